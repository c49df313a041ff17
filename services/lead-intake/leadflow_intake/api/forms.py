"""Browser forms: a public form key, allowed origins, a honeypot, per-address rate limit,
and an embeddable page (``GET /v1/forms/{form_key}/embed``) that posts to the submit."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict, deque
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from leadflow_intake.capture import capture_lead
from leadflow_intake.embed import (
    FieldsError,
    content_security_policy,
    fields_of,
    render_page,
    resolve_fields,
)
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


def _own_origin(request: Request, origin: str) -> bool:
    """True when ``origin`` is this service itself: a post from the embeddable page, which
    the browser sends with this service's origin (framed on an allowed site or not)."""
    return urlsplit(origin).netloc.lower() == request.url.netloc.lower()


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


def _form_out(form: Form) -> FormOut:
    return FormOut(
        form_key=form.form_key,
        name=form.name,
        allowed_origins=form.allowed_origins,
        redirect_url=form.redirect_url,
        created_at=form.created_at,
        fields=fields_of(form.fields),
        embed_path=f"/v1/forms/{form.form_key}/embed",
    )


@router.post(
    "",
    status_code=201,
    response_model=FormOut,
    responses=problem_responses(422, s422="invalid input, or a field name no form can post"),
)
async def create_form(body: FormIn, session: SessionDep, principal: Admin) -> FormOut:
    """A form: ``fields`` (optional) are the embeddable page's inputs, each a lead field the
    submit accepts; ``embed_path`` is the page to iframe or link to."""
    fields = None
    if body.fields is not None:
        try:
            fields = [f.model_dump() for f in resolve_fields(body.fields)]
        except FieldsError as exc:
            raise InvalidInput.field(exc.field, exc.message) from exc
    form = Form(
        form_key=f"fk_{secrets.token_urlsafe(18)}",
        name=body.name,
        allowed_origins=[o.rstrip("/") for o in body.allowed_origins],
        redirect_url=body.redirect_url,
        created_at=utcnow(),
        fields=fields,
    )
    FormRepository(session).add(form)
    return _form_out(form)


_UtmParam = Annotated[str | None, Query(max_length=200, description="posted along, hidden")]


@router.get(
    "/{form_key}/embed",
    response_class=HTMLResponse,
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "the form as a standalone page (no script) posting to /submit",
        },
        # Without ``model``: FastAPI would document a problem in the route's text/html;
        # document_problems gives each the JSON Problem body it really is.
        **{
            status: {"description": doc["description"]}
            for status, doc in problem_responses(404, 422, s404="unknown form key").items()
        },
    },
)
async def embed_form(
    form_key: str,
    session: SessionDep,
    utm_source: _UtmParam = None,
    utm_medium: _UtmParam = None,
    utm_campaign: _UtmParam = None,
    utm_term: _UtmParam = None,
    utm_content: _UtmParam = None,
) -> HTMLResponse:
    """The page marketing iframes on its site (framing allowed for the form's allowed
    origins only) or links to; no token, the form key is public. ``utm_*`` in the query
    string are posted along with the form as hidden fields."""
    form = await FormRepository(session).get(form_key)
    if form is None:
        raise NotFound("unknown form key")
    utm = {
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "utm_campaign": utm_campaign,
        "utm_term": utm_term,
        "utm_content": utm_content,
    }
    fields = fields_of(form.fields)
    shown = {f.name for f in fields}
    hidden = {k: v for k, v in utm.items() if v and k not in shown}
    page = render_page(form_key=form.form_key, form_name=form.name, fields=fields, hidden=hidden)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": content_security_policy(
                form.allowed_origins, form.redirect_url
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "Cache-Control": "no-cache",
        },
    )


_FORM_FIELDS: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{key: {"type": "string"} for key in sorted(LEAD_KEYS)},
        **{f"utm_{key}": {"type": "string"} for key in UTM_KEYS},
        "consent_marketing": {"type": "string", "description": "1, true, yes, on or y"},
        "consent_text": {"type": "string", "description": "the consent text version"},
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
    if origin is None or (origin not in form.allowed_origins and not _own_origin(request, origin)):
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
    if wants_json:  # like POST /v1/leads: optional fields kept as given are listed
        return JSONResponse(
            {
                "lead_id": result.lead_id,
                "status": result.status,
                "warnings": [w.as_dict() for w in result.warnings],
            },
            status_code=202 if result.status == "accepted" else 200,
        )
    return RedirectResponse(form.redirect_url, status_code=303)
