"""Capturing a lead: normalise, deduplicate by email, merge, announce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.models import Lead
from leadflow_intake.repository import LeadRepository
from leadflow_intake.schemas import LeadIn
from leadflow_shared.events import LeadCaptured, LeadMerged
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import Outbox

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "state",
    "employees",
    "industry",
    "website",
    "source",
    "campaign",
)


def normalize_email(email: str) -> str:
    """Case-insensitive, trimmed: the identity used to recognise a returning lead."""
    return email.strip().lower()


@dataclass(frozen=True)
class CaptureResult:
    lead_id: str
    status: Literal["accepted", "merged"]


def merge_into(lead: Lead, incoming: LeadIn) -> list[str]:
    """Apply the newer submission's non-empty values; returns the changed field names."""
    changed: list[str] = []
    for name in PROFILE_FIELDS:
        value = getattr(incoming, name)
        if value is not None and value != getattr(lead, name):
            setattr(lead, name, value)
            changed.append(name)
    utm = {k: v for k, v in incoming.utm.model_dump().items() if v}
    if utm and utm != lead.utm:
        lead.utm = {**lead.utm, **utm}
        changed.append("utm")
    if incoming.consent.marketing and not lead.consent_marketing:
        lead.consent_marketing = True
        changed.append("consent")
    if incoming.custom:
        merged = {**lead.custom, **incoming.custom}
        if merged != lead.custom:
            lead.custom = merged
            changed.append("custom")
    return changed


def profile_of(lead: Lead) -> dict[str, Any]:
    """The lead's profile as carried by ``lead.captured`` / ``lead.merged``."""
    assert lead.email is not None
    return {
        "lead_id": lead.id,
        "email": lead.email,
        **{name: getattr(lead, name) for name in PROFILE_FIELDS},
        "utm": dict(lead.utm),
        "consent_marketing": lead.consent_marketing,
        "custom": dict(lead.custom),
    }


async def capture_lead(session: AsyncSession, outbox: Outbox, incoming: LeadIn) -> CaptureResult:
    """Store a new lead or merge into the known one with the same email; emit the event."""
    repo = LeadRepository(session)
    now = utcnow()
    existing = await repo.by_email(normalize_email(incoming.email))
    if existing is not None:
        changed = merge_into(existing, incoming)
        existing.updated_at = now
        await outbox.add(session, LeadMerged(**profile_of(existing), changed_fields=changed))
        return CaptureResult(existing.id, "merged")
    lead = Lead(
        id=new_id(),
        email=str(incoming.email),
        email_normalized=normalize_email(incoming.email),
        **{name: getattr(incoming, name) for name in PROFILE_FIELDS},
        utm={k: v for k, v in incoming.utm.model_dump().items() if v},
        consent_marketing=incoming.consent.marketing,
        custom=dict(incoming.custom),
        created_at=now,
        updated_at=now,
    )
    repo.add(lead)
    await session.flush()
    await outbox.add(session, LeadCaptured(**profile_of(lead), captured_at=now))
    return CaptureResult(lead.id, "accepted")
