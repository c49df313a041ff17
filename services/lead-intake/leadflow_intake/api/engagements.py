"""``/v1/engagements``: behaviour that feeds the engagement score."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from leadflow_intake.models import Engagement
from leadflow_intake.normalise import email_key
from leadflow_intake.repository import LeadRepository
from leadflow_intake.schemas import EngagementAccepted, EngagementIn
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import InvalidInput, NotFound, problem_responses
from leadflow_shared.events import EngagementRecorded
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import Runtime, SessionDep

router = APIRouter(prefix="/v1/engagements", tags=["engagements"])

Submitter = Annotated[Principal, Depends(require_roles("integration", "manager"))]


@router.post(
    "",
    status_code=202,
    response_model=EngagementAccepted,
    responses=problem_responses(404, s404="no lead with that email or lead_id"),
)
async def post_engagement(
    body: EngagementIn, session: SessionDep, runtime: Runtime, principal: Submitter
) -> EngagementAccepted:
    if (body.email is None) == (body.lead_id is None):
        raise InvalidInput.field("email", "give exactly one of email or lead_id")
    repo = LeadRepository(session)
    lead = (
        await repo.get(body.lead_id)
        if body.lead_id is not None
        else await repo.by_email(email_key(str(body.email)))
    )
    if lead is None or lead.erased_at is not None:
        raise NotFound("no lead with that email or lead_id; post the lead first")
    now = utcnow()
    engagement = Engagement(
        id=new_id(),
        lead_id=lead.id,
        type=body.type,
        occurred_at=body.occurred_at or now,
        properties=dict(body.properties),
        recorded_at=now,
    )
    session.add(engagement)
    await runtime.outbox.add(
        session,
        EngagementRecorded(
            lead_id=lead.id,
            engagement_id=engagement.id,
            type=engagement.type,
            occurred_at=engagement.occurred_at,
            properties=engagement.properties,
        ),
    )
    return EngagementAccepted(engagement_id=engagement.id, lead_id=lead.id)
