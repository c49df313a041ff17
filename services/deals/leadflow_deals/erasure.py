"""GDPR erasure announced by lead-intake: the deals forget the lead's personal data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.repository import DealRepository


async def erase_lead_data(session: AsyncSession, lead_id: str, erased_at: datetime) -> None:
    """Null company, name, close reason and notes on every deal of the lead, delete the
    SDR's qualification (its fields and notes may name people), and remember the erasure
    so a late assignment or qualification cannot bring them back. Amounts, stages, owners
    and dates stay: they are not personal data and reports need them."""
    repo = DealRepository(session)
    await repo.erase_lead(lead_id, erased_at)
    await repo.forget_qualification(lead_id)
