"""Request and response bodies of lead-intake's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from leadflow_intake.emails import Email
from leadflow_shared.events.schemas import AccountMatch
from leadflow_shared.validation import LongText, Name, ShortText

CustomValue = str | int | float | bool | None
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=50, pattern=r"^[^\x00]*$")
]
Headcount = int | Annotated[str, Field(max_length=50)]


class Utm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Name | None = None
    medium: Name | None = None
    campaign: Name | None = None
    term: Name | None = None
    content: Name | None = None


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    marketing: bool = False
    # The version of the consent text the person agreed to (e.g. "privacy-2026-10").
    text: ShortText | None = None


class ConsentOut(BaseModel):
    """Marketing consent as recorded: when, through what (the lead's source or the
    channel: api, import) and to which text version."""

    marketing: bool
    at: datetime | None = None
    source: str | None = None
    text: str | None = None


class Touch(BaseModel):
    """One submission's attribution."""

    source: str | None = None
    campaign: str | None = None
    utm: dict[str, str] = Field(default_factory=dict)
    at: datetime | None = None


class HistoryEntry(BaseModel):
    """A value a later submission changed: the old one is kept here."""

    at: datetime
    field: str
    old: Any = None
    new: Any = None
    source: str | None = None


class LeadIn(BaseModel):
    """A lead as posted by a form, a marketing tool or an import row."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    first_name: Name | None = None
    last_name: Name | None = None
    company: Name | None = None
    title: Name | None = None
    # Optional fields are normalised on capture and never refuse a lead (contract v2):
    # what cannot be normalised is kept as given and reported in ``warnings``.
    phone: Phone | None = Field(
        default=None, description="any format; stored in E.164 where parseable"
    )
    country: Annotated[ShortText, Field(description="ISO 3166 code or country name")] | None = None
    state: ShortText | None = None
    employees: Headcount | None = Field(
        default=None, description="a number; text such as 1,000 or 51-200 is understood"
    )
    industry: ShortText | None = None
    website: Annotated[str, Field(max_length=500)] | None = None
    source: ShortText | None = None
    campaign: Name | None = None
    utm: Utm = Field(default_factory=Utm)
    consent: Consent = Field(default_factory=Consent)
    custom: dict[ShortText, CustomValue] = Field(default_factory=dict, max_length=50)

    @field_validator("custom")
    @classmethod
    def _custom_strings(cls, value: dict[str, CustomValue]) -> dict[str, CustomValue]:
        for key, item in value.items():
            if isinstance(item, str) and (len(item) > 1000 or "\x00" in item):
                raise ValueError(f"custom.{key} must be a string of at most 1000 characters")
        return value


class CaptureWarning(BaseModel):
    """An optional field that could not be normalised: kept as given, the lead captured."""

    field: str
    message: str
    value: str


class LeadAccepted(BaseModel):
    lead_id: str
    status: Literal["accepted", "merged"]
    warnings: list[CaptureWarning] = Field(default_factory=list)


class LeadOut(BaseModel):
    lead_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    phone: str | None
    country: str | None
    state: str | None
    employees: int | None
    industry: str | None
    website: str | None
    source: str | None
    campaign: str | None
    utm: dict[str, str]
    consent: ConsentOut
    custom: dict[str, Any]
    first_touch: Touch | None = None
    last_touch: Touch | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    # Derived on capture (contract v2): the dedup key, the registrable domain, flags.
    email_normalized: str | None = None
    domain: str | None = None
    free_mail: bool | None = None
    disposable: bool | None = None
    role_account: bool | None = None
    seniority: str | None = None
    function: str | None = None
    # Optional fields that could not be normalised, as given (field → value).
    unnormalized: dict[str, str] = Field(default_factory=dict)
    # The account matched at capture (by domain, else by fuzzy company name), or null.
    account: AccountMatch | None = None
    created_at: datetime
    updated_at: datetime
    erased: bool
    owners: dict[str, str | None]


EngagementType = Literal[
    "page_view",
    "pricing_page_view",
    "email_open",
    "email_click",
    "content_download",
    "webinar_attended",
    "demo_request",
    "form_submit",
    "trial_signup",
    # Contract v2: a hand-raiser, and two that subtract in the default scoring rules.
    "contact_sales",
    "unsubscribe",
    "email_bounce",
]


class EngagementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    # Lead ids are UUIDs: anything else (a NUL, say, which PostgreSQL refuses) is a 422.
    lead_id: Annotated[str, Field(max_length=36, pattern=r"^[A-Za-z0-9-]+$")] | None = None
    type: EngagementType
    occurred_at: datetime | None = None
    properties: dict[ShortText, CustomValue] = Field(default_factory=dict, max_length=50)

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        # Enumerated values are lower-case on the wire and accepted in any case.
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone offset, e.g. 2026-11-27T10:00:00Z")
        return value


class EngagementAccepted(BaseModel):
    """``accepted``: recorded for the lead. ``pending``: no lead has this email yet; kept
    as an anonymous touch, attached (and announced) when the lead is captured."""

    engagement_id: str
    lead_id: str | None
    status: Literal["accepted", "pending"] = "accepted"


class EngagementBatchIn(BaseModel):
    """A batch: each item is an engagement as ``POST /v1/engagements`` takes it alone,
    validated on its own (a bad item is reported, the others are recorded)."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class EngagementItemResult(BaseModel):
    index: int
    status: Literal["accepted", "pending", "rejected"]
    engagement_id: str | None = None
    lead_id: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class EngagementBatchResult(BaseModel):
    accepted: int
    pending: int
    rejected: int
    results: list[EngagementItemResult]


FormFieldType = Literal["text", "email", "tel", "url", "number", "textarea", "checkbox"]


class FormField(BaseModel):
    """One input of a form's embeddable page (``GET /v1/forms/{form_key}/embed``).

    ``name`` is a lead field the submit endpoint accepts (``email``, ``first_name``, …,
    ``utm_source``…, ``consent_marketing``); ``label`` defaults to a readable name and
    ``type`` to the usual one for the field (``email``, ``tel`` for phone, ``checkbox`` for
    consent_marketing, else ``text``).
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    label: Annotated[Name, Field(min_length=1)] | None = None
    type: FormFieldType | None = None
    required: bool = False


class FormIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(min_length=1)
    allowed_origins: list[Annotated[str, Field(max_length=300, pattern=r"^https?://[^/\s]+$")]] = (
        Field(min_length=1, max_length=20)
    )
    redirect_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")]
    # The embeddable page's inputs, in order; omitted or null: the default set (email,
    # names, company, title, phone, country, marketing consent). Must include ``email``.
    fields: list[FormField] | None = Field(default=None, min_length=1, max_length=40)


class FormOut(BaseModel):
    form_key: str
    name: str
    allowed_origins: list[str]
    redirect_url: str
    created_at: datetime
    # The fields the embeddable page shows (the default set when none were configured).
    fields: list[FormField]
    embed_path: str


class ImportRejection(BaseModel):
    row: int
    errors: list[dict[str, str]]


class ImportStatus(BaseModel):
    """A CSV import: ``receiving`` → ``processing`` → ``done`` (or ``failed``).

    ``rejected`` lists the first rejected rows (``import_max_listed_rejections``) with
    their errors; ``rejected_count`` counts them all.
    """

    import_id: str
    status: Literal["receiving", "processing", "done", "failed"]
    filename: str | None
    created_by: str
    rows: int
    processed: int
    accepted: int
    merged: int
    rejected: list[ImportRejection]
    rejected_count: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class ErasureResult(BaseModel):
    lead_id: str
    status: Literal["erased"] = "erased"
    notes: LongText | None = None


class AccountOut(BaseModel):
    """An account leads are matched to: from an admin's CSV (``source: import``) or a
    won deal (``deal``). ``owner`` is a rep id; ``owner_role`` says where it came from
    (``import``, ``ae`` of the won deal, ``am`` assigned after it)."""

    account_id: str
    name: str
    domain: str | None
    owner: str | None
    owner_role: str | None
    source: Literal["import", "deal"]
    deal_id: str | None
    created_at: datetime
    updated_at: datetime


class AccountList(BaseModel):
    accounts: list[AccountOut]
    # The offset of the next page, or null on the last one.
    next_offset: int | None = None


class AccountImportResult(BaseModel):
    """An account CSV: ``created`` and ``updated`` accounts (the same domain, or without
    a domain the same name, is the same account), rejected rows by number (header = 1)."""

    created: int
    updated: int
    rejected: list[ImportRejection]
    rejected_count: int
