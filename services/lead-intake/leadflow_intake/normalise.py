"""Cleaning a lead on capture (contract v2: never lose a lead over an optional field).

Every lookup is built once at import: country names and codes (pycountry plus common
aliases), free-mail and disposable domains, role mailboxes, title patterns; the
registrable-domain splitter uses tldextract's bundled Public Suffix List snapshot and
never fetches. Per-value results that repeat across leads (an email domain, a title, a
website) are cached.

What cannot be normalised is kept as given: ``phone`` keeps its text, ``country`` (an
ISO code downstream) becomes null with the given text in ``unnormalized``; each such
field is reported in ``warnings``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers
import pycountry
import tldextract
from disposable_email_domains import blocklist as _DISPOSABLE_BLOCKLIST

from leadflow_intake.schemas import LeadIn

# --- country ----------------------------------------------------------------------------

_COUNTRY_ALIASES: dict[str, str] = {
    "usa": "US",
    "u s": "US",
    "u s a": "US",
    "united states of america": "US",
    "america": "US",
    "the united states": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "iran": "IR",
    "vietnam": "VN",
    "czech republic": "CZ",
    "czechia": "CZ",
    "holland": "NL",
    "the netherlands": "NL",
    "ivory coast": "CI",
    "turkey": "TR",
    "turkiye": "TR",
    "taiwan": "TW",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "syria": "SY",
    "laos": "LA",
    "moldova": "MD",
    "macedonia": "MK",
    "brunei": "BN",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "vatican": "VA",
    "palestine": "PS",
    "micronesia": "FM",
    "uae": "AE",
    "deutschland": "DE",
    "espana": "ES",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "italia": "IT",
    "nederland": "NL",
    "belgique": "BE",
    "belgie": "BE",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "polska": "PL",
    "brasil": "BR",
    "mexico": "MX",
    "el": "GR",  # the EU's code for Greece
}
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _fold_text(value: str) -> str:
    """``"  Côte d'Ivoire "`` → ``"cote d ivoire"``: accents, case, punctuation folded."""
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return _NON_WORD.sub(" ", plain.lower()).strip()


def _country_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        for attr in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
            name = getattr(country, attr, None)
            if name:
                table[_fold_text(name)] = code
                # "Korea, Republic of" → also "republic of korea"
                if "," in name:
                    head, _, tail = name.partition(",")
                    table[_fold_text(f"{tail} {head}")] = code
    for alias, code in _COUNTRY_ALIASES.items():
        table[alias] = code
    return table


_COUNTRIES: dict[str, str] = _country_table()


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """ISO 3166-1 alpha-2 for a code (alpha-2/alpha-3) or a name in any case; else None."""
    key = _fold_text(value)
    found = _COUNTRIES.get(key)
    if found is None and key.startswith("the "):
        found = _COUNTRIES.get(key[4:])
    return found


# --- phone ------------------------------------------------------------------------------


def e164(phone: str, region: str | None) -> str | None:
    """The number in E.164 (``+49301234567``), with ``region`` as the hint for national
    formats; None when it is not a valid number."""
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- email and domain -------------------------------------------------------------------

# The providers whose mailboxes ignore dots in the local part.
_DOTLESS = frozenset({"gmail.com", "googlemail.com"})
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}

FREE_MAIL: frozenset[str] = frozenset(
    """
    gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.de yahoo.fr yahoo.es yahoo.it
    yahoo.co.jp yahoo.com.br ymail.com rocketmail.com hotmail.com hotmail.co.uk hotmail.de
    hotmail.fr hotmail.it hotmail.es outlook.com outlook.de outlook.fr live.com live.co.uk
    live.de live.fr msn.com aol.com aim.com icloud.com me.com mac.com gmx.com gmx.de gmx.net
    gmx.at gmx.ch web.de t-online.de freenet.de posteo.de mail.de arcor.de mail.ru yandex.ru
    yandex.com protonmail.com protonmail.ch proton.me pm.me zoho.com zohomail.com
    tutanota.com tuta.io fastmail.com fastmail.fm hey.com mail.com email.com inbox.com
    qq.com 163.com 126.com sina.com foxmail.com naver.com daum.net hanmail.net
    free.fr orange.fr laposte.net sfr.fr wanadoo.fr libero.it virgilio.it tiscali.it
    seznam.cz wp.pl o2.pl onet.pl interia.pl btinternet.com sky.com comcast.net
    verizon.net att.net sbcglobal.net bellsouth.net cox.net earthlink.net
    rediffmail.com bigpond.com optusnet.com.au shaw.ca rogers.com
    """.split()
)
DISPOSABLE: frozenset[str] = frozenset(_DISPOSABLE_BLOCKLIST)

ROLE_MAILBOXES: frozenset[str] = frozenset(
    """
    info sales support admin administrator contact hello hi office marketing team help
    billing accounts accounting finance hr jobs careers recruiting noreply no-reply
    donotreply webmaster postmaster hostmaster enquiries enquiry inquiries inquiry press
    media service services customerservice customer-service mail general privacy legal
    security abuse feedback orders partners partnerships newsletter it ops operations
    reception frontdesk booking bookings events
    """.split()
)

# Bundled Public Suffix List snapshot only: no URL to fetch, no cache directory to write.
_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=8192)
def registrable_domain(host_or_url: str) -> str | None:
    """``https://www.shop.bigcorp.co.uk/x`` → ``bigcorp.co.uk``; None without a public
    suffix (``localhost``, an IP address, text that is not a host)."""
    value = host_or_url.strip().lower()
    if not value or " " in value:
        return None
    parts = _SUFFIXES(value)
    if not parts.domain or not parts.suffix:
        return None
    return f"{parts.domain}.{parts.suffix}"


@dataclass(frozen=True, slots=True)
class DomainFacts:
    registrable: str | None
    free_mail: bool
    disposable: bool


@lru_cache(maxsize=8192)
def domain_facts(domain: str) -> DomainFacts:
    registrable = registrable_domain(domain)
    return DomainFacts(
        registrable,
        domain in FREE_MAIL or registrable in FREE_MAIL,
        domain in DISPOSABLE or registrable in DISPOSABLE,
    )


def email_key(email: str) -> str:
    """The identity a returning lead is recognised by: lower-case, plus-addressing
    removed (``jane+promo@`` → ``jane@``), dots removed where the provider ignores them
    (gmail/googlemail, which are one provider)."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    domain = _DOMAIN_ALIASES.get(domain, domain)
    if domain in _DOTLESS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def is_role_account(email: str) -> bool:
    local = email.rpartition("@")[0].lower().split("+", 1)[0]
    return local in ROLE_MAILBOXES or local.replace(".", "").replace("_", "") in ROLE_MAILBOXES


# --- title ------------------------------------------------------------------------------

_SENIORITY: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (level, re.compile(pattern))
    for level, pattern in (
        ("ic", r"\b(assistant|intern|trainee|werkstudent)\b"),
        ("vp", r"\b(vp|svp|evp|avp|vice president|vice-president)\b"),
        (
            "c_level",
            r"\b(c[a-z]o|chief|founder|co-?founder|owner|president|managing director|"
            r"geschaftsfuhrer|general manager|partner)\b",
        ),
        ("director", r"\b(director|head|direktor|leiter)\b"),
        ("manager", r"\b(manager|lead|supervisor|team ?lead|principal)\b"),
    )
)
_FUNCTION: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("sales", r"\b(sales|account executive|ae|sdr|bdr|business development|cro|revenue)\b"),
        ("marketing", r"\b(marketing|cmo|growth|brand|demand gen\w*|content|seo|communications)\b"),
        (
            "engineering",
            r"\b(engineer\w*|developer|software|cto|devops|sre|architect|technology)\b",
        ),
        ("it", r"\b(it|cio|ciso|information technology|security|infrastructure|systems)\b"),
        ("product", r"\b(product|cpo|ux|design\w*)\b"),
        ("finance", r"\b(finance|financial|cfo|accounting|accountant|controller|treasury)\b"),
        ("hr", r"\b(hr|human resources|people|talent|recruit\w*)\b"),
        ("operations", r"\b(operations|coo|ops|supply chain|logistics|procurement)\b"),
        ("support", r"\b(support|customer success|customer service)\b"),
        ("legal", r"\b(legal|counsel|lawyer|attorney|compliance)\b"),
        ("data", r"\b(data|analytics|analyst|bi)\b"),
        (
            "executive",
            r"\b(ceo|chief executive|founder|co-?founder|owner|president|managing director)\b",
        ),
    )
)


@lru_cache(maxsize=8192)
def title_facts(title: str) -> tuple[str | None, str | None]:
    """``(seniority, function)`` from a job title: seniority one of c_level, vp, director,
    manager, ic (any other title); function such as sales, marketing, engineering, or
    None when the title names none."""
    text = _fold_text(title)
    if not text:
        return None, None
    seniority = next((level for level, pattern in _SENIORITY if pattern.search(text)), "ic")
    function = next((name for name, pattern in _FUNCTION if pattern.search(text)), None)
    return seniority, function


# --- employees --------------------------------------------------------------------------

_EMPLOYEES = re.compile(r"^\s*(\d[\d,.' ]*)\s*(?:\+|-\s*\d[\d,.' ]*|or more|and more)?\s*$")


def employees_of(value: int | str) -> int | None:
    """A headcount from ``250``, ``"1,000"``, ``"1000+"`` or a range ``"51-200"`` (its
    lower bound); None when it is none of these."""
    if isinstance(value, int):
        return value if 0 <= value <= 10_000_000 else None
    match = _EMPLOYEES.match(value)
    if match is None:
        return None
    digits = re.sub(r"[,.' ]", "", match.group(1))
    number = int(digits) if digits.isdigit() else -1
    return number if 0 <= number <= 10_000_000 else None


# --- the lead ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldWarning:
    field: str
    message: str
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "value": self.value}


@dataclass(slots=True)
class Normalised:
    """One submission, cleaned: what the ``leads`` row and the events carry."""

    email: str
    email_key: str
    country: str | None
    phone: str | None
    employees: int | None
    website_domain: str | None
    unnormalized: dict[str, str] = field(default_factory=dict)
    warnings: list[FieldWarning] = field(default_factory=list)

    def flag(self, name: str, given: str, message: str) -> None:
        self.unnormalized[name] = given
        self.warnings.append(FieldWarning(name, message, given))


def normalise(lead: LeadIn) -> Normalised:
    """Clean one submission; never raises for an optional field."""
    email = str(lead.email).lower()
    result = Normalised(email, email_key(email), None, None, None, None)
    if lead.country:
        result.country = country_code(lead.country)
        if result.country is None:
            result.flag(
                "country",
                lead.country,
                "not a country we know (expected an ISO code or a name); kept as given",
            )
    if lead.phone:
        formatted = e164(lead.phone, result.country)
        result.phone = formatted or lead.phone
        if formatted is None:
            hint = f" for {result.country}" if result.country else " (no country to hint)"
            result.flag("phone", lead.phone, f"not a valid phone number{hint}; kept as given")
    if lead.employees is not None:
        result.employees = employees_of(lead.employees)
        if result.employees is None:
            result.flag(
                "employees",
                str(lead.employees)[:50],
                "not a headcount between 0 and 10,000,000; kept as given",
            )
    if lead.website:
        result.website_domain = registrable_domain(lead.website)
        if result.website_domain is None:
            result.flag("website", lead.website, "no registrable domain found; kept as given")
    return result


def derived(email: str | None, website: str | None, title: str | None) -> dict[str, Any]:
    """The fields derived from a lead's (merged) profile: ``domain`` (the email's
    registrable domain, or the website's for a free-mail or disposable address),
    ``free_mail``, ``disposable``, ``role_account``, ``seniority``, ``function``."""
    facts = domain_facts(email.rpartition("@")[2]) if email else None
    domain = facts.registrable if facts is not None else None
    if facts is None or facts.free_mail or facts.disposable:
        domain = registrable_domain(website) if website else None
    seniority, function = title_facts(title) if title else (None, None)
    return {
        "domain": domain,
        "free_mail": facts.free_mail if facts is not None else None,
        "disposable": facts.disposable if facts is not None else None,
        "role_account": is_role_account(email) if email else None,
        "seniority": seniority,
        "function": function,
    }
