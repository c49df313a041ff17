"""The embeddable form page: a standalone HTML document, inline CSS, no script.

Marketing iframes ``GET /v1/forms/{form_key}/embed`` on its site (or links to it). The page
posts ``application/x-www-form-urlencoded`` to the form's ``/submit`` with a plain HTML form,
so it works without JavaScript. Everything taken from the form's configuration or the query
string is HTML-escaped; the Content-Security-Policy allows no script at all, only the one
inline style block (by its hash), form posts to this service (and the redirect that follows
to the form's redirect URL), and framing by the form's allowed origins only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlsplit

from leadflow_intake.flat import LEAD_KEYS, UTM_KEYS
from leadflow_intake.schemas import FormField, FormFieldType

HONEYPOT = "_honeypot"  # the field the submit endpoint treats as the bots' trap (flat.IGNORED)
CONSENT = "consent_marketing"
# Names a form's field may have: what the submit endpoint maps onto the lead.
ACCEPTED_NAMES = frozenset(LEAD_KEYS) | {f"utm_{k}" for k in UTM_KEYS} | {CONSENT}

DEFAULT_FIELDS: tuple[FormField, ...] = (
    FormField(name="email", label="Work email", type="email", required=True),
    FormField(name="first_name", label="First name", type="text"),
    FormField(name="last_name", label="Last name", type="text"),
    FormField(name="company", label="Company", type="text"),
    FormField(name="title", label="Job title", type="text"),
    FormField(name="phone", label="Phone", type="tel"),
    FormField(name="country", label="Country", type="text"),
    FormField(
        name=CONSENT,
        label="I agree to receive marketing email. I can unsubscribe at any time.",
        type="checkbox",
    ),
)
_DEFAULT_TYPES: dict[str, FormFieldType] = {
    "email": "email",
    "phone": "tel",
    "website": "url",
    "employees": "number",
    CONSENT: "checkbox",
}
_DEFAULT_LABELS = {
    "email": "Work email",
    "title": "Job title",
    "employees": "Number of employees",
    CONSENT: "I agree to receive marketing email. I can unsubscribe at any time.",
}
_AUTOCOMPLETE = {
    "email": "email",
    "first_name": "given-name",
    "last_name": "family-name",
    "company": "organization",
    "title": "organization-title",
    "phone": "tel",
    "country": "country-name",
    "state": "address-level1",
    "website": "url",
}


class FieldsError(ValueError):
    """A form's ``fields`` cannot be used; ``field`` names the bad one (``fields[2].name``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def resolve_fields(fields: Sequence[FormField]) -> list[FormField]:
    """Check ``fields`` against what the submit endpoint accepts and fill labels and types.

    Raises :class:`FieldsError` for an unknown or repeated name, a form without ``email``
    (a submission without one is always refused), or a checkbox on a field other than
    ``consent_marketing`` (a checkbox posts ``on``, which only consent understands).
    """
    resolved: list[FormField] = []
    seen: set[str] = set()
    for i, f in enumerate(fields):
        where = f"fields[{i}]"
        if f.name not in ACCEPTED_NAMES:
            raise FieldsError(
                f"{where}.name",
                f"{f.name!r} is not a lead field a form can post; use one of "
                + ", ".join(sorted(ACCEPTED_NAMES)),
            )
        if f.name in seen:
            raise FieldsError(f"{where}.name", f"{f.name!r} appears twice")
        seen.add(f.name)
        kind = f.type or _DEFAULT_TYPES.get(f.name, "text")
        if (kind == "checkbox") != (f.name == CONSENT):
            raise FieldsError(
                f"{where}.type",
                "consent_marketing is a checkbox, and only consent_marketing is",
            )
        label = f.label or _DEFAULT_LABELS.get(f.name, f.name.replace("_", " ").capitalize())
        required = f.required or f.name == "email"
        resolved.append(FormField(name=f.name, label=label, type=kind, required=required))
    if "email" not in seen:
        raise FieldsError("fields", "a form must have an email field")
    return resolved


def fields_of(stored: list[dict[str, Any]] | None) -> list[FormField]:
    """The form's fields as stored (resolved at creation), or the default set."""
    if not stored:
        return list(DEFAULT_FIELDS)
    return [FormField.model_validate(f) for f in stored]


# --- the page -------------------------------------------------------------------------------

STYLE = """
*,*::before,*::after{box-sizing:border-box}
body{margin:0;padding:16px;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1a1a1a;background:#fff}
main{max-width:32rem;margin:0 auto}
h1{font-size:1.25rem;margin:0 0 1rem}
.field{margin:0 0 .85rem}
label{display:block;font-weight:600;margin:0 0 .25rem}
.req{color:#b00020}
input,textarea{width:100%;padding:.55rem .6rem;font:inherit;border:1px solid #8a8a8a;
border-radius:6px;background:#fff;color:inherit}
textarea{min-height:6rem}
input:focus,textarea:focus,button:focus{outline:3px solid #2563eb;outline-offset:1px}
.check{display:flex;gap:.5rem;align-items:flex-start}
.check input{width:auto;margin:.3rem 0 0}
.check label{font-weight:400}
button{padding:.65rem 1.2rem;font:inherit;font-weight:600;color:#fff;background:#1d4ed8;
border:0;border-radius:6px;cursor:pointer}
.hp{position:absolute!important;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden}
""".strip()
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
# A CSP source for an origin: scheme, host (letters, digits, dots, dashes) and a port.
_CSP_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if _CSP_ORIGIN.match(origin) else None


def content_security_policy(allowed_origins: Sequence[str], redirect_url: str) -> str:
    """No script, no fetch, one hashed inline style, posts to this service (and the redirect
    the submit answers with), framed only by the form's allowed origins."""
    ancestors = [o for o in allowed_origins if _CSP_ORIGIN.match(o)] or ["'none'"]
    # Browsers check form-action on the redirect after the post as well.
    targets = ["'self'"]
    redirect_origin = _origin(redirect_url)
    if redirect_origin:
        targets.append(redirect_origin)
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src 'sha256-{STYLE_HASH}'",
            "base-uri 'none'",
            f"form-action {' '.join(targets)}",
            f"frame-ancestors {' '.join(ancestors)}",
        ]
    )


def _input(f: FormField) -> str:
    name = escape(f.name)
    ident = f"f-{name}"
    required = " required" if f.required else ""
    aria_required = ' aria-required="true"' if f.required else ""
    auto = _AUTOCOMPLETE.get(f.name)
    autocomplete = f' autocomplete="{auto}"' if auto else ""
    mark = ' <span class="req" aria-hidden="true">*</span>' if f.required else ""
    label = escape(f.label or f.name)
    if f.type == "checkbox":
        return (
            f'<div class="field check"><input type="checkbox" id="{ident}" name="{name}" '
            f'value="on"{required}><label for="{ident}">{label}{mark}</label></div>'
        )
    if f.type == "textarea":
        control = f'<textarea id="{ident}" name="{name}"{required}{aria_required}></textarea>'
    else:
        extra = ' min="0" step="1"' if f.type == "number" else ""
        control = (
            f'<input type="{escape(f.type or "text")}" id="{ident}" name="{name}" '
            f'maxlength="200"{extra}{autocomplete}{required}{aria_required}>'
        )
    return f'<div class="field"><label for="{ident}">{label}{mark}</label>{control}</div>'


def render_page(
    *,
    form_key: str,
    form_name: str,
    fields: Sequence[FormField],
    hidden: Mapping[str, str],
    lang: str = "en",
) -> str:
    """The page's HTML. ``hidden``: extra values posted along (``utm_*`` from the page URL)."""
    title = escape(form_name)
    action = escape(f"/v1/forms/{form_key}/submit")
    inputs = "\n".join(_input(f) for f in fields)
    carried = "\n".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    honeypot = (
        f'<div class="hp" aria-hidden="true"><label for="f-hp">Leave this field empty</label>'
        f'<input type="text" id="f-hp" name="{HONEYPOT}" value="" tabindex="-1" '
        f'autocomplete="off"></div>'
    )
    return f"""<!doctype html>
<html lang="{escape(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="strict-origin-when-cross-origin">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>{title}</h1>
<form method="post" action="{action}" target="_top" accept-charset="utf-8">
{inputs}
{carried}
{honeypot}
<button type="submit">Submit</button>
</form>
</main>
</body>
</html>
"""
