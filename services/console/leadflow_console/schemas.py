"""Response bodies of console's JSON API (the dashboard reads exactly these)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


# --- funnel -----------------------------------------------------------------------------


class Timing(_Out):
    """Distribution of the time between two stages, over the leads that reached both."""

    samples: int
    median_seconds: float | None
    p90_seconds: float | None
    median_ms: int | None
    p90_ms: int | None


class FunnelStep(_Out):
    stage: str
    count: int
    conversion_from_previous: float | None = Field(
        description="count / previous step's count; null for the first step or after a zero"
    )
    time_from_previous: Timing | None


class SourceBreakdown(_Out):
    source: str | None
    captured: int
    mql: int
    won: int


class CampaignBreakdown(_Out):
    campaign: str | None
    captured: int
    mql: int
    won: int


class Window(_Out):
    from_: datetime | None = Field(alias="from")
    to: datetime | None


class Funnel(_Out):
    window: Window
    steps: list[FunnelStep] = Field(
        description="captured → mql → assigned → qualified → deal → won, in order"
    )
    counts: dict[str, int] = Field(description="every stage, main and side stages")
    speed_to_lead: Timing = Field(description="captured → first SDR assignment")
    time_to_accept: Timing = Field(description="first SDR assignment → accepted")
    sla_breaches: int
    by_source: list[SourceBreakdown]
    by_campaign: list[CampaignBreakdown]


# --- SLA and load -----------------------------------------------------------------------


class SlaBreachOut(_Out):
    lead_id: str
    role: str
    owner: str
    sla_due_at: datetime
    breached_at: datetime


class SlaBreaches(_Out):
    total: int
    breaches: list[SlaBreachOut] = Field(description="newest first")


class SdrLoad(_Out):
    rep: str
    open_leads: int = Field(description="assigned and not yet qualified/disqualified/recycled")
    awaiting_acceptance: int


class AeLoad(_Out):
    rep: str
    open_deals: int


class AmLoad(_Out):
    rep: str
    accounts: int


class Load(_Out):
    sdr: list[SdrLoad]
    ae: list[AeLoad]
    am: list[AmLoad]


# --- topics -----------------------------------------------------------------------------


class PartitionEnd(_Out):
    partition: int
    end_offset: int


class PartitionLag(_Out):
    partition: int
    committed: int | None
    lag: int


class GroupLag(_Out):
    group: str
    lag: int
    partitions: list[PartitionLag]


class TopicReport(_Out):
    topic: str
    exists: bool
    dead_letter: bool
    partitions: list[PartitionEnd]
    messages: int = Field(description="sum of end offsets: messages ever appended")
    rate_per_second: float | None = Field(
        description="messages/s over the sampling window; null until two samples exist"
    )
    groups: list[GroupLag] = Field(description="groups that have committed offsets here")


class GroupTotal(_Out):
    group: str
    lag: int
    topics: list[str]


class DeadLetters(_Out):
    total: int
    by_topic: dict[str, int]


class TopicsReport(_Out):
    sampled_at: datetime
    rate_window_seconds: float
    topics: list[TopicReport]
    groups: list[GroupTotal]
    dead_letters: DeadLetters
