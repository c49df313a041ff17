"""Engagements: recorded for a known lead, or kept as an anonymous touch (by folded email)
until that lead is captured, then attached and announced so scoring counts them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.models import AnonymousEngagement, Engagement
from leadflow_shared.events import EngagementRecorded

ENGAGEMENTS: Table = Engagement.__table__  # type: ignore[assignment]
ANONYMOUS: Table = AnonymousEngagement.__table__  # type: ignore[assignment]


def recorded(row: dict[str, Any]) -> EngagementRecorded:
    return EngagementRecorded(
        lead_id=row["lead_id"],
        engagement_id=row["id"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        properties=row["properties"],
    )


async def attach_anonymous(
    session: AsyncSession, lead_of_key: dict[str, str], now: datetime
) -> list[EngagementRecorded]:
    """Move the anonymous touches of these folded emails to their leads (one select,
    one insert, one delete); the events to publish, oldest touch first."""
    if not lead_of_key:
        return []
    rows = (
        (
            await session.execute(
                select(ANONYMOUS)
                .where(ANONYMOUS.c.email_key.in_(list(lead_of_key)))
                .order_by(ANONYMOUS.c.occurred_at, ANONYMOUS.c.id)
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return []
    attached = [
        {
            "id": row["id"],
            "lead_id": lead_of_key[row["email_key"]],
            "type": row["type"],
            "occurred_at": row["occurred_at"],
            "properties": row["properties"],
            "recorded_at": now,
        }
        for row in rows
    ]
    await session.execute(ENGAGEMENTS.insert(), attached)
    await session.execute(delete(ANONYMOUS).where(ANONYMOUS.c.id.in_([r["id"] for r in rows])))
    return [recorded(row) for row in attached]


async def keep_anonymous(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    """Store touches for emails no lead has yet (``id, email_key, type, occurred_at,
    properties, recorded_at``)."""
    values = list(rows)
    if values:
        await session.execute(ANONYMOUS.insert(), values)
