"""CSV header names to lead fields: case- and spacing-insensitive, with common synonyms."""

from __future__ import annotations

import re

from leadflow_intake.flat import LEAD_KEYS, UTM_KEYS

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("email address", "e-mail", "e-mail address", "mail", "work email"),
    "first_name": ("first name", "firstname", "given name", "forename"),
    "last_name": ("last name", "lastname", "surname", "family name"),
    "company": ("company name", "organization", "organisation", "account name", "account"),
    "title": ("job title", "position", "role"),
    "phone": ("phone number", "telephone", "mobile", "mobile phone", "phone no"),
    "country": ("country/region", "country code", "country or region"),
    "state": ("state/province", "province", "region", "state or province"),
    "employees": ("number of employees", "employee count", "company size", "headcount"),
    "website": ("web site", "company website", "url", "domain"),
    "source": ("lead source",),
    "consent_marketing": ("marketing consent", "opt in", "opt-in", "consent"),
}


def _fold(name: str) -> str:
    """``"  E-Mail_Address "`` → ``"e mail address"``: case, separators and runs folded."""
    return re.sub(r"[\s_\-]+", " ", name.strip().lower()).strip()


_CANONICAL: dict[str, str] = {}
for _field in (*LEAD_KEYS, "consent_marketing", *(f"utm_{k}" for k in UTM_KEYS)):
    _CANONICAL[_fold(_field)] = _field
for _field, _names in _SYNONYMS.items():
    for _name in _names:
        _CANONICAL[_fold(_name)] = _field


def lead_field_of(header: str) -> str:
    """The lead field a column feeds; an unknown column keeps its own (trimmed) name and
    lands in ``custom``."""
    return _CANONICAL.get(_fold(header), header.strip())
