"""Browser forms: a public form key, allowed origins, a honeypot, per-address rate limit."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict, deque
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from leadflow_intake.capture import capture_lead
from leadflow_intake.errors import UnsupportedMediaType
from leadflow_intake.flat import LEAD_KEYS, UTM_KEYS, lead_from_flat
from leadflow_intake.models import Form
from leadflow_intake.repository import FormRepository
from leadflow_intake.schemas import FormIn, FormOut, LeadAccepted
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    problem_responses,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import Runtime, SessionDep

router = APIRouter(prefix="/v1/forms", tags=["forms"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]


class RateLimiter:
    """Sliding one-minute window per key, in this process (each replica limits alone)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str, per_minute: int) -> bool:
        now = time.monotonic()
        hits = self._hits[key]
        while hits and now - hits[0] > 60:
            hits.popleft()
        if len(hits) >= per_minute:
            return False
        hits.append(now)
        return True


limiter = RateLimiter()


def _origin_of(request: Request) -> str | None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.rstrip("/")
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


@router.post("", status_code=201, response_model=FormOut)
async def create_form(body: FormIn, session: SessionDep, principal: Admin) -> FormOut:
    form = Form(
        form_key=f"fk_{secrets.token_urlsafe(18)}",
        name=body.name,
        allowed_origins=[o.rstrip("/") for o in body.allowed_origins],
        redirect_url=body.redirect_url,
        created_at=utcnow(),
    )
    FormRepository(session).add(form)
    return FormOut(
        form_key=form.form_key,
        name=form.name,
        allowed_origins=form.allowed_origins,
        redirect_url=form.redirect_url,
        created_at=form.created_at,
    )


_FORM_FIELDS: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{key: {"type": "string"} for key in sorted(LEAD_KEYS)},
        **{f"utm_{key}": {"type": "string"} for key in UTM_KEYS},
        "consent_marketing": {"type": "string", "description": "1, true, yes, on or y"},
        "_honeypot": {"type": "string", "description": "hidden; bots fill it, people do not"},
    },
    "required": ["email"],
    "additionalProperties": {"type": "string", "description": "kept in the lead's custom"},
}
_SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _FORM_FIELDS},
            "multipart/form-data": {"schema": _FORM_FIELDS},
        },
    }
}
_LEAD_ACCEPTED = {"application/json": {"schema": {"$ref": "#/components/schemas/LeadAccepted"}}}


@router.post(
    "/{form_key}/submit",
    response_model=None,
    openapi_extra=_SUBMIT_DOC,
    responses={
        200: {"content": _LEAD_ACCEPTED, "description": "merged into a known lead (JSON asked)"},
        202: {"content": _LEAD_ACCEPTED, "description": "captured (JSON asked)"},
        303: {
            "description": "captured; to the form's redirect URL (a browser)",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **problem_responses(
            403,
            404,
            415,
            422,
            429,
            s403="this origin is not one of the form's allowed_origins",
            s404="unknown form key",
        ),
    },
)
async def submit_form(
    form_key: str, request: Request, session: SessionDep, runtime: Runtime
) -> Response:
    """``application/x-www-form-urlencoded`` from a browser; no token, the form key is public.

    303 to the form's redirect URL, or JSON when the client sends ``Accept: application/json``.
    """
    form = await FormRepository(session).get(form_key)
    if form is None:
        raise NotFound("unknown form key")
    origin = _origin_of(request)
    if origin is None or origin not in form.allowed_origins:
        raise Forbidden("this origin may not post to this form (see the form's allowed_origins)")
    settings = runtime.settings
    assert isinstance(settings, IntakeSettings)
    client = request.client.host if request.client else "unknown"
    if not limiter.allow(f"{form_key}:{client}", settings.form_rate_limit_per_minute):
        raise TooManyRequests("too many submissions from this address; try again in a minute")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise UnsupportedMediaType(
            "send the form as application/x-www-form-urlencoded or multipart/form-data"
        )
    try:
        raw = await request.form()
    except Exception as exc:  # malformed bodies are the client's problem, not a 500
        raise InvalidInput.field("body", "could not parse the form body") from exc
    values = {k: v for k, v in raw.items() if isinstance(v, str)}
    wants_json = "application/json" in request.headers.get("accept", "")
    if values.get("_honeypot"):
        # Bots fill the hidden field; answer as if accepted and store nothing.
        if wants_json:
            decoy = LeadAccepted(lead_id=new_id(), status="accepted")
            return JSONResponse(decoy.model_dump(), status_code=202)
        return RedirectResponse(form.redirect_url, status_code=303)
    try:
        lead = lead_from_flat(values)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise InvalidInput(
            "invalid form submission: " + ", ".join(f["field"] for f in fields), fields=fields
        ) from exc
    lead = lead.model_copy(update={"source": lead.source or f"form:{form.name}"})
    result = await capture_lead(session, runtime.outbox, lead)
    if wants_json:
        return JSONResponse(
            LeadAccepted(lead_id=result.lead_id, status=result.status).model_dump(),
            status_code=202 if result.status == "accepted" else 200,
        )
    return RedirectResponse(form.redirect_url, status_code=303)
