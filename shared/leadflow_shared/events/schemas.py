"""Typed data of every event type in contract v1 (the one shared vocabulary)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class Topic(StrEnum):
    LEADS_CAPTURED = "leads.captured"
    LEADS_ENGAGEMENT = "leads.engagement"
    LEADS_SCORED = "leads.scored"
    LEADS_ROUTING = "leads.routing"
    LEADS_QUALIFICATION = "leads.qualification"
    DEALS_LIFECYCLE = "deals.lifecycle"
    PRIVACY_ERASURE = "privacy.erasure"
    # Bulk imports: the same event types as leads.captured, served after live topics.
    LEADS_IMPORTED = "leads.imported"


TOPICS: tuple[str, ...] = tuple(t.value for t in Topic)


class EventData(BaseModel):
    """Base of every event's data: it always carries ``lead_id``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[Topic]
    # Further topics that carry this event type (the bulk lane), subscribed to alike.
    also_on: ClassVar[tuple[Topic, ...]] = ()

    lead_id: str


# --- lead-intake ------------------------------------------------------------------------


class AccountMatch(BaseModel):
    """The account a lead was matched to at capture (contract v2): by its registrable
    domain (``match: "domain"``, confidence 1.0) or by fuzzy company name (``"name"``,
    confidence 0.9-1.0, the name similarity)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    account_id: str
    name: str
    domain: str | None = None
    owner: str | None = None  # a rep id, or null when the account has no owner yet
    match: Literal["domain", "name"]
    confidence: float


class LeadProfile(EventData):
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    phone: str | None = None
    country: str | None = None
    state: str | None = None
    employees: int | None = None
    industry: str | None = None
    website: str | None = None
    source: str | None = None
    campaign: str | None = None
    utm: dict[str, str] = Field(default_factory=dict)
    consent_marketing: bool = False
    custom: dict[str, Any] = Field(default_factory=dict)
    # Contract v2, derived by lead-intake on capture; absent (defaults) in older events.
    # ``country`` is ISO 3166-1 alpha-2 or null, ``phone`` E.164 where parseable.
    email_normalized: str | None = None  # the dedup key (plus-addressing, gmail dots folded)
    domain: str | None = None  # registrable domain of the email (or website for free mail)
    free_mail: bool | None = None
    disposable: bool | None = None
    role_account: bool | None = None
    seniority: str | None = None  # c_level, vp, director, manager, ic
    function: str | None = None  # sales, marketing, engineering, it, product, finance, …
    # Optional fields that could not be normalised, as given (field → value).
    unnormalized: dict[str, str] = Field(default_factory=dict)
    # Attribution {source, campaign, utm, at} of the first and the latest submission, and
    # the consent record {marketing, at, source, text} (null until consent is given).
    first_touch: dict[str, Any] | None = None
    last_touch: dict[str, Any] | None = None
    consent: dict[str, Any] | None = None
    # The account matched at capture, or null (absent in older events).
    account: AccountMatch | None = None


class LeadCaptured(LeadProfile):
    event_type = "lead.captured"
    topic = Topic.LEADS_CAPTURED
    also_on = (Topic.LEADS_IMPORTED,)
    captured_at: datetime


class LeadMerged(LeadProfile):
    """A new submission for a known lead; the profile is the merged result."""

    event_type = "lead.merged"
    topic = Topic.LEADS_CAPTURED
    also_on = (Topic.LEADS_IMPORTED,)
    changed_fields: list[str] = Field(default_factory=list)


class LeadUpdated(LeadProfile):
    event_type = "lead.updated"
    topic = Topic.LEADS_CAPTURED
    also_on = (Topic.LEADS_IMPORTED,)
    changed_fields: list[str] = Field(default_factory=list)


class EngagementRecorded(EventData):
    event_type = "engagement.recorded"
    topic = Topic.LEADS_ENGAGEMENT
    engagement_id: str
    type: str
    occurred_at: datetime
    properties: dict[str, Any] = Field(default_factory=dict)


class LeadErased(EventData):
    event_type = "lead.erased"
    topic = Topic.PRIVACY_ERASURE
    erased_at: datetime


# --- scoring ----------------------------------------------------------------------------


class ScoreFactor(BaseModel):
    model_config = ConfigDict(frozen=True)
    factor: str
    points: int


class LeadScored(EventData):
    event_type = "lead.scored"
    topic = Topic.LEADS_SCORED
    score: int
    fit: int
    engagement: int
    grade: str
    # Contract v2 (optional, additive): A-D from the fit points, 1-4 from the engagement.
    fit_grade: str | None = None
    engagement_level: int | None = None
    mql: bool
    became_mql: bool = False
    explanation: list[ScoreFactor] = Field(default_factory=list)
    rules_version: int
    scored_at: datetime


# --- routing ----------------------------------------------------------------------------

RoutedRole = Literal["sdr", "ae", "am"]


class LeadAssigned(EventData):
    event_type = "lead.assigned"
    topic = Topic.LEADS_ROUTING
    role: Literal["sdr", "ae"]
    owner: str
    rule: str
    strategy: str
    reason: str
    sla_due_at: datetime | None = None
    candidates: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)
    company: str | None = None


class LeadSlaBreached(EventData):
    event_type = "lead.sla_breached"
    topic = Topic.LEADS_ROUTING
    role: RoutedRole
    owner: str
    sla_due_at: datetime


class LeadEscalated(EventData):
    """A lead's SLA was breached ``breaches`` times (contract v2): the rep who breached
    (``owner``) is escalated to their manager (null when the rep has none)."""

    event_type = "lead.escalated"
    topic = Topic.LEADS_ROUTING
    role: RoutedRole
    owner: str
    manager: str | None = None
    breaches: int
    reason: str


class LeadReassigned(EventData):
    event_type = "lead.reassigned"
    topic = Topic.LEADS_ROUTING
    role: RoutedRole
    previous_owner: str | None
    owner: str
    reason: str


class AccountAssigned(EventData):
    event_type = "account.assigned"
    topic = Topic.LEADS_ROUTING
    role: Literal["am"] = "am"
    owner: str
    deal_id: str
    rule: str
    strategy: str
    reason: str


class LeadAccepted(EventData):
    event_type = "lead.accepted"
    topic = Topic.LEADS_QUALIFICATION
    owner: str
    accepted_at: datetime


class LeadQualified(EventData):
    event_type = "lead.qualified"
    topic = Topic.LEADS_QUALIFICATION
    owner: str
    framework: Literal["bant", "meddic"]
    fields: dict[str, Any] = Field(default_factory=dict)
    notes: str | None = None
    qualified_at: datetime


class LeadDisqualified(EventData):
    event_type = "lead.disqualified"
    topic = Topic.LEADS_QUALIFICATION
    owner: str
    reason: str


class LeadRecycled(EventData):
    event_type = "lead.recycled"
    topic = Topic.LEADS_QUALIFICATION
    owner: str
    reason: str


# --- deals ------------------------------------------------------------------------------

StageId = Literal["discovery", "demo", "proposal", "negotiation", "closed_won", "closed_lost"]


class DealEvent(EventData):
    deal_id: str
    owner: str


class DealCreated(DealEvent):
    event_type = "deal.created"
    topic = Topic.DEALS_LIFECYCLE
    stage: StageId
    probability: int
    amount: Decimal | None = None
    currency: str
    company: str | None = None
    created_at: datetime


class DealStageChanged(DealEvent):
    event_type = "deal.stage_changed"
    topic = Topic.DEALS_LIFECYCLE
    from_stage: StageId
    to_stage: StageId
    probability: int
    changed_at: datetime


class DealWon(DealEvent):
    event_type = "deal.won"
    topic = Topic.DEALS_LIFECYCLE
    amount: Decimal
    currency: str
    reason: str | None = None
    company: str | None = None
    closed_at: datetime


class DealLost(DealEvent):
    event_type = "deal.lost"
    topic = Topic.DEALS_LIFECYCLE
    amount: Decimal | None = None
    currency: str
    reason: str | None = None
    closed_at: datetime


EVENT_MODELS: dict[str, type[EventData]] = {
    model.event_type: model
    for model in (
        LeadCaptured,
        LeadMerged,
        LeadUpdated,
        EngagementRecorded,
        LeadErased,
        LeadScored,
        LeadAssigned,
        LeadSlaBreached,
        LeadEscalated,
        LeadReassigned,
        AccountAssigned,
        LeadAccepted,
        LeadQualified,
        LeadDisqualified,
        LeadRecycled,
        DealCreated,
        DealStageChanged,
        DealWon,
        DealLost,
    )
}


def parse_event_data(event_type: str, data: dict[str, Any]) -> EventData:
    """Validate ``data`` against its event type's model (``KeyError`` for unknown types)."""
    return EVENT_MODELS[event_type].model_validate(data)
