"""CSV header names to lead fields: case-, spacing- and punctuation-insensitive, with
common synonyms (CRM and marketing-tool exports, a few German ones)."""

from __future__ import annotations

import re

from leadflow_intake.flat import LEAD_KEYS, UTM_KEYS

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": (
        "email address",
        "e-mail",
        "e-mail address",
        "mail",
        "work email",
        "business email",
        "email id",
        "emailaddress",
        "primary email",
        "contact email",
        "e-mail-adresse",
    ),
    "first_name": ("first name", "firstname", "given name", "forename", "first", "vorname"),
    "last_name": ("last name", "lastname", "surname", "family name", "last", "nachname"),
    "company": (
        "company name",
        "organization",
        "organisation",
        "organization name",
        "account name",
        "account",
        "employer",
        "business name",
        "firma",
        "unternehmen",
    ),
    "title": ("job title", "position", "role", "job role", "jobtitle", "titel"),
    "phone": (
        "phone number",
        "telephone",
        "telephone number",
        "mobile",
        "mobile phone",
        "mobile number",
        "phone no",
        "phone #",
        "business phone",
        "work phone",
        "telefon",
    ),
    "country": ("country/region", "country code", "country or region", "country name", "land"),
    "state": ("state/province", "province", "region", "state or province", "state/region"),
    "employees": (
        "number of employees",
        "no. of employees",
        "employee count",
        "company size",
        "headcount",
        "mitarbeiter",
    ),
    "industry": ("industry type", "sector", "branche"),
    "website": ("web site", "company website", "url", "domain", "website url", "homepage"),
    "source": ("lead source", "original source"),
    "campaign": ("campaign name",),
    "consent_marketing": ("marketing consent", "opt in", "opt-in", "consent", "email opt in"),
    "consent_text": ("consent text", "consent version", "consent text version"),
}
_NON_WORD = re.compile(r"[\W_]+")


def _fold(name: str) -> str:
    """``"  E-Mail_Address: "`` → ``"e mail address"``: case, punctuation and separators
    (``_ - / . : #`` …) folded into single spaces."""
    return " ".join(_NON_WORD.split(name.strip().lower())).strip()


_CANONICAL: dict[str, str] = {}
for _field in (*LEAD_KEYS, "consent_marketing", "consent_text", *(f"utm_{k}" for k in UTM_KEYS)):
    _CANONICAL[_fold(_field)] = _field
for _field, _names in _SYNONYMS.items():
    for _name in _names:
        _CANONICAL[_fold(_name)] = _field
# "Email Address" and "EmailAddress" alike: also match with the spaces removed.
for _folded, _field in list(_CANONICAL.items()):
    _CANONICAL.setdefault(_folded.replace(" ", ""), _field)


def lead_field_of(header: str) -> str:
    """The lead field a column feeds; an unknown column keeps its own (trimmed) name and
    lands in ``custom``."""
    folded = _fold(header)
    return _CANONICAL.get(folded) or _CANONICAL.get(folded.replace(" ", ""), header.strip())


_ACCOUNT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "account",
        "account name",
        "company",
        "company name",
        "organization",
        "organisation",
        "organization name",
        "customer",
        "customer name",
        "firma",
        "unternehmen",
    ),
    "domain": (
        "website",
        "web site",
        "url",
        "company domain",
        "domain name",
        "email domain",
        "homepage",
        "company website",
    ),
    "owner": (
        "account owner",
        "owner id",
        "rep",
        "rep id",
        "account manager",
        "am",
        "owner rep",
        "assigned to",
    ),
}
_ACCOUNT_CANONICAL: dict[str, str] = {_fold(f): f for f in _ACCOUNT_SYNONYMS}
for _field, _names in _ACCOUNT_SYNONYMS.items():
    for _name in _names:
        _ACCOUNT_CANONICAL[_fold(_name)] = _field
for _folded, _field in list(_ACCOUNT_CANONICAL.items()):
    _ACCOUNT_CANONICAL.setdefault(_folded.replace(" ", ""), _field)


def account_field_of(header: str) -> str:
    """``name``, ``domain`` or ``owner`` for an account CSV column (case, spacing and
    synonyms such as ``Account Name``, ``Website``, ``Account Owner`` understood); ``""``
    for a column that is none of them (ignored)."""
    folded = _fold(header)
    return _ACCOUNT_CANONICAL.get(folded) or _ACCOUNT_CANONICAL.get(folded.replace(" ", ""), "")
