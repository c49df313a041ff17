"""``/v1/engagements``: behaviour that feeds the engagement score — one, or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.engagements import ENGAGEMENTS, keep_anonymous, recorded
from leadflow_intake.normalise import email_key
from leadflow_intake.repository import LEADS
from leadflow_intake.schemas import (
    EngagementAccepted,
    EngagementBatchIn,
    EngagementBatchResult,
    EngagementIn,
    EngagementItemResult,
)
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import InvalidInput, NotFound, problem_responses
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import Outbox
from leadflow_shared.service import Runtime, SessionDep

router = APIRouter(prefix="/v1/engagements", tags=["engagements"])

Submitter = Annotated[Principal, Depends(require_roles("integration", "manager"))]

# The body is one engagement or a batch; validated in the handler so a bad field is named
# as in the body (``type``, ``events``), not after the union branch it failed.
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        EngagementIn.model_json_schema(),
                        EngagementBatchIn.model_json_schema(),
                    ]
                }
            }
        },
    }
}


def _fields(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in exc.errors()
    ]


def _problems(item: EngagementIn) -> list[dict[str, str]]:
    if (item.email is None) == (item.lead_id is None):
        return [{"field": "email", "message": "give exactly one of email or lead_id"}]
    return []


async def _record(
    session: AsyncSession, outbox: Outbox, items: list[EngagementIn]
) -> list[EngagementItemResult]:
    """Record each engagement (a handful of statements for any number): for its lead,
    or, for an email no lead has yet, as an anonymous touch. Unknown lead ids are
    rejected (an id is never a future lead)."""
    keys = {email_key(str(i.email)) for i in items if i.email is not None}
    ids = {i.lead_id for i in items if i.lead_id is not None}
    by_key: dict[str, str] = {}
    live_ids: set[str] = set()
    if keys:
        rows = await session.execute(
            select(LEADS.c.id, LEADS.c.email_normalized).where(
                LEADS.c.email_normalized.in_(keys), LEADS.c.erased_at.is_(None)
            )
        )
        by_key = {key: lead_id for lead_id, key in rows.all()}
    if ids:
        rows = await session.execute(
            select(LEADS.c.id).where(LEADS.c.id.in_(ids), LEADS.c.erased_at.is_(None))
        )
        live_ids = set(rows.scalars())
    now = utcnow()
    known: list[dict[str, Any]] = []
    anonymous: list[dict[str, Any]] = []
    results: list[EngagementItemResult] = []
    for index, item in enumerate(items):
        row: dict[str, Any] = {
            "id": new_id(),
            "type": item.type,
            "occurred_at": item.occurred_at or now,
            "properties": dict(item.properties),
            "recorded_at": now,
        }
        if item.lead_id is not None:
            if item.lead_id not in live_ids:
                results.append(
                    EngagementItemResult(
                        index=index,
                        status="rejected",
                        errors=[{"field": "lead_id", "message": "no lead with that id"}],
                    )
                )
                continue
            lead_id: str | None = item.lead_id
        else:
            lead_id = by_key.get(email_key(str(item.email)))
        if lead_id is None:
            anonymous.append({**row, "email_key": email_key(str(item.email))})
            results.append(
                EngagementItemResult(index=index, status="pending", engagement_id=row["id"])
            )
        else:
            known.append({**row, "lead_id": lead_id})
            results.append(
                EngagementItemResult(
                    index=index, status="accepted", engagement_id=row["id"], lead_id=lead_id
                )
            )
    if known:
        await session.execute(ENGAGEMENTS.insert(), known)
        await outbox.add_many(session, [recorded(row) for row in known])
    await keep_anonymous(session, anonymous)
    return results


@router.post(
    "",
    status_code=202,
    response_model=EngagementAccepted,
    responses={
        200: {"model": EngagementBatchResult, "description": "a batch: each item's outcome"},
        **problem_responses(404, 422, s404="no lead with that lead_id"),
    },
    openapi_extra=_BODY_DOC,
)
async def post_engagement(
    payload: Annotated[dict[str, Any], Body()],
    session: SessionDep,
    runtime: Runtime,
    principal: Submitter,
) -> Any:
    """One engagement ``{email | lead_id, type, occurred_at, properties}`` → 202, or a
    batch ``{"events": [...]}`` (up to 1,000) → 200 with each item's outcome
    (``accepted``, ``pending``, or ``rejected`` with its errors; a bad item never
    refuses the others).

    An email no lead has yet is not refused: the engagement is kept as an anonymous touch
    (``status: "pending"``, ``lead_id: null``) and attached to the lead when it is
    captured (matched by the folded email), then announced as ``engagement.recorded`` so
    scoring counts it. An unknown ``lead_id`` is a 404 (rejected in a batch)."""
    try:
        body: EngagementIn | EngagementBatchIn = (
            EngagementBatchIn.model_validate(payload)
            if "events" in payload
            else EngagementIn.model_validate(payload)
        )
    except ValidationError as exc:
        fields = _fields(exc)
        raise InvalidInput(
            "invalid engagement: " + ", ".join(f["field"] for f in fields), fields=fields
        ) from exc
    if isinstance(body, EngagementIn):
        problems = _problems(body)
        if problems:
            raise InvalidInput.field(problems[0]["field"], problems[0]["message"])
        (result,) = await _record(session, runtime.outbox, [body])
        if result.status == "rejected":
            raise NotFound("no lead with that lead_id; post the lead first")
        assert result.engagement_id is not None
        status = "pending" if result.status == "pending" else "accepted"
        return EngagementAccepted(
            engagement_id=result.engagement_id, lead_id=result.lead_id, status=status
        )
    valid: list[tuple[int, EngagementIn]] = []
    rejected: list[EngagementItemResult] = []
    for index, raw in enumerate(body.events):
        try:
            item = EngagementIn.model_validate(raw)
        except ValidationError as exc:
            rejected.append(
                EngagementItemResult(index=index, status="rejected", errors=_fields(exc))
            )
            continue
        problems = _problems(item)
        if problems:
            rejected.append(EngagementItemResult(index=index, status="rejected", errors=problems))
        else:
            valid.append((index, item))
    recorded_items = await _record(session, runtime.outbox, [item for _, item in valid])
    for (index, _), result in zip(valid, recorded_items, strict=True):
        result.index = index
    results = sorted([*recorded_items, *rejected], key=lambda r: r.index)
    summary = EngagementBatchResult(
        accepted=sum(r.status == "accepted" for r in results),
        pending=sum(r.status == "pending" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=results,
    )
    return JSONResponse(summary.model_dump(mode="json"), status_code=200)
