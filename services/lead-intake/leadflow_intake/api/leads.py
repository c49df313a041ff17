"""``/v1/leads``: JSON capture, read, erasure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from leadflow_intake.capture_batcher import IdempotencyKey, capture_batcher, key_reused
from leadflow_intake.erasure import erase_lead
from leadflow_intake.normalise import FieldWarning, normalise
from leadflow_intake.repository import LeadRepository
from leadflow_intake.schemas import (
    ConsentOut,
    ErasureResult,
    HistoryEntry,
    LeadAccepted,
    LeadIn,
    LeadOut,
    Touch,
)
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import Conflict, Forbidden, NotFound, problem_responses
from leadflow_shared.events.schemas import AccountMatch
from leadflow_shared.service import Runtime, SessionDep

router = APIRouter(prefix="/v1/leads", tags=["leads"])

Submitter = Annotated[Principal, Depends(require_roles("integration", "manager"))]
Reader = Annotated[Principal, Depends(require_roles("integration", "manager", "sdr", "ae", "am"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]


@router.post(
    "",
    status_code=202,
    response_model=LeadAccepted,
    responses={
        200: {"model": LeadAccepted, "description": "merged into a known lead"},
        **problem_responses(
            422, s422="invalid lead, or an Idempotency-Key reused with another body"
        ),
    },
)
async def post_lead(
    lead: LeadIn,
    runtime: Runtime,
    principal: Submitter,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Capture a lead. A known email (compared folded: case, plus-addressing, gmail dots)
    merges into the existing lead (200, ``merged``). Optional fields that cannot be
    normalised (an unknown country, an unparseable phone) are kept as given and listed in
    ``warnings``; they never refuse the lead. A retry with the same ``Idempotency-Key``
    and body gets the first answer; the key with another body is a 422 naming it."""
    # No request-wide transaction: the capture batcher writes this lead together with
    # the others arriving meanwhile, and answers once it is committed. The answer is
    # built directly (the hot path skips response-model validation of two strings).
    idempotency = None
    if idempotency_key:
        idempotency = IdempotencyKey(principal.sub, idempotency_key, body_hash(lead))
        async with runtime.db.sessions() as session:
            earlier = await LeadRepository(session).idempotent_result(
                principal.sub, idempotency_key
            )
        if earlier is not None and earlier.status in ("accepted", "merged"):
            if earlier.body_hash is not None and earlier.body_hash != idempotency.body_hash:
                raise key_reused(idempotency_key)
            return _accepted(earlier.lead_id, earlier.status, normalise(lead).warnings)
    result = await capture_batcher(runtime).capture(lead, idempotency=idempotency)
    return _accepted(result.lead_id, result.status, result.warnings)


def body_hash(lead: LeadIn) -> str:
    """The validated body's fingerprint: whitespace, key order and defaults do not count."""
    return hashlib.sha256(lead.model_dump_json().encode()).hexdigest()


def _accepted(lead_id: str, status: str, warnings: Sequence[FieldWarning]) -> JSONResponse:
    return JSONResponse(
        {"lead_id": lead_id, "status": status, "warnings": [w.as_dict() for w in warnings]},
        status_code=202 if status == "accepted" else 200,
    )


@router.get(
    "/{lead_id}",
    response_model=LeadOut,
    responses=problem_responses(403, 404, s403="a rep reading a lead not assigned to them"),
)
async def get_lead(lead_id: str, session: SessionDep, principal: Reader) -> LeadOut:
    repo = LeadRepository(session)
    lead = await repo.get(lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id}")
    owners = await repo.owners(lead_id)
    if principal.role in {"sdr", "ae", "am"} and owners.get(principal.role) != principal.sub:
        raise Forbidden("this lead is not assigned to you")
    return LeadOut(
        lead_id=lead.id,
        email=lead.email,
        first_name=lead.first_name,
        last_name=lead.last_name,
        company=lead.company,
        title=lead.title,
        phone=lead.phone,
        country=lead.country,
        state=lead.state,
        employees=lead.employees,
        industry=lead.industry,
        website=lead.website,
        source=lead.source,
        campaign=lead.campaign,
        utm=lead.utm,
        consent=ConsentOut.model_validate(lead.consent)
        if lead.consent
        else ConsentOut(marketing=lead.consent_marketing),
        first_touch=Touch.model_validate(lead.first_touch) if lead.first_touch else None,
        last_touch=Touch.model_validate(lead.last_touch) if lead.last_touch else None,
        history=[HistoryEntry.model_validate(h) for h in lead.history or []],
        custom=lead.custom,
        email_normalized=lead.email_normalized,
        domain=lead.domain,
        free_mail=lead.free_mail,
        disposable=lead.disposable,
        role_account=lead.role_account,
        seniority=lead.seniority,
        function=lead.function,
        unnormalized=lead.unnormalized or {},
        account=AccountMatch.model_validate(lead.account) if lead.account else None,
        created_at=lead.created_at,
        updated_at=lead.updated_at,
        erased=lead.erased_at is not None,
        owners=owners,
    )


@router.delete(
    "/{lead_id}",
    status_code=202,
    response_model=ErasureResult,
    responses=problem_responses(404, 409, s409="the lead was already erased"),
)
async def delete_lead(
    lead_id: str, session: SessionDep, runtime: Runtime, principal: Admin
) -> ErasureResult:
    """Erase the lead's personal data here and, via ``privacy.erasure``, everywhere."""
    lead = await LeadRepository(session).get(lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id}")
    if lead.erased_at is not None:
        raise Conflict(f"lead {lead_id} was already erased")
    await erase_lead(session, runtime.outbox, lead)
    return ErasureResult(lead_id=lead_id, notes="erasure announced on privacy.erasure")
