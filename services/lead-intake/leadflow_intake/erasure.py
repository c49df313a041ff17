"""GDPR erasure: null every personal field, delete engagements, announce ``lead.erased``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.capture import DERIVED_FIELDS, PROFILE_FIELDS
from leadflow_intake.models import Lead
from leadflow_intake.repository import LeadRepository
from leadflow_shared.events import LeadErased
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import Outbox


async def erase_lead(session: AsyncSession, outbox: Outbox, lead: Lead) -> None:
    """Erase in this service and tell every other service to erase too.

    The row stays as a tombstone (id and timestamps only) so the id still answers 404-free
    with ``erased: true`` and a resubmission of the same email becomes a new lead.
    """
    now = utcnow()
    lead.email = None
    lead.email_normalized = None
    for name in PROFILE_FIELDS:
        setattr(lead, name, None)
    lead.utm = {}
    lead.custom = {}
    lead.consent_marketing = False
    # What normalisation and merges added: given values, history, touches, derived facts.
    for name in DERIVED_FIELDS:
        setattr(lead, name, None)
    lead.unnormalized = None
    lead.history = None
    lead.first_touch = None
    lead.last_touch = None
    lead.consent = None
    lead.account = None
    lead.erased_at = now
    lead.updated_at = now
    await LeadRepository(session).erase_engagements(lead.id)
    await outbox.add(session, LeadErased(lead_id=lead.id, erased_at=now))
