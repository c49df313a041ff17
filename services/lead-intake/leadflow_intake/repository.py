"""Every query lead-intake makes."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.models import Engagement, Form, IdempotencyRecord, Lead, LeadOwner


class LeadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, lead: Lead) -> None:
        self.session.add(lead)

    async def get(self, lead_id: str) -> Lead | None:
        return await self.session.get(Lead, lead_id)

    async def by_email(self, email_normalized: str) -> Lead | None:
        return await self.session.scalar(
            select(Lead).where(Lead.email_normalized == email_normalized)
        )

    async def owners(self, lead_id: str) -> dict[str, str | None]:
        rows = await self.session.scalars(select(LeadOwner).where(LeadOwner.lead_id == lead_id))
        owners: dict[str, str | None] = {"sdr": None, "ae": None, "am": None}
        owners.update({row.role: row.owner for row in rows})
        return owners

    async def set_owner(self, lead_id: str, role: str, owner: str) -> None:
        row = await self.session.get(LeadOwner, (lead_id, role))
        if row is None:
            self.session.add(LeadOwner(lead_id=lead_id, role=role, owner=owner))
        else:
            row.owner = owner

    async def erase_engagements(self, lead_id: str) -> None:
        await self.session.execute(delete(Engagement).where(Engagement.lead_id == lead_id))

    async def idempotent_result(self, client: str, key: str) -> IdempotencyRecord | None:
        return await self.session.get(IdempotencyRecord, (client, key))

    def remember(self, record: IdempotencyRecord) -> None:
        self.session.add(record)


class FormRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, form: Form) -> None:
        self.session.add(form)

    async def get(self, form_key: str) -> Form | None:
        return await self.session.get(Form, form_key)
