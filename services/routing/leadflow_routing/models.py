"""routing's tables: the team directory, rule sets, leads it routes, decisions, counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from leadflow_shared.db import UtcDateTime
from leadflow_shared.messaging import Outbox, define_messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData()


messaging = define_messaging_tables(Base.metadata)
# Stateless (a table and a source name): handlers and routes stage events through it.
outbox = Outbox(messaging, "leadflow/routing")


class Rep(Base):
    __tablename__ = "reps"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(10), index=True)
    team: Mapped[str | None] = mapped_column(String(100))
    territories: Mapped[list[str]] = mapped_column(JSON, default=list)
    segments: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity_per_day: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    working_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    out_of_office: Mapped[bool] = mapped_column(Boolean, default=False)
    out_of_office_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Planned absences [{from, to, reason}] (ISO 8601 times), by start, never overlapping.
    out_of_office_periods: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The rep's manager (a rep id): escalations go there.
    manager: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RuleSetVersion(Base):
    __tablename__ = "rule_sets"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class RoutedLead(Base):
    """What routing knows of a lead (from events) and where it stands."""

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Profile attributes the rules look at (no contact details are kept here).
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    profile_known: Mapped[bool] = mapped_column(Boolean, default=False)
    company: Mapped[str | None] = mapped_column(String(200))
    mql: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[int | None] = mapped_column(Integer)
    # new → waiting_for_rep → assigned → accepted → qualified | disqualified | nurture
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    sdr: Mapped[str | None] = mapped_column(String(100), index=True)
    ae: Mapped[str | None] = mapped_column(String(100), index=True)
    am: Mapped[str | None] = mapped_column(String(100), index=True)
    sla_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Since when the lead waits for a free rep (a waiting status), for max_wait_minutes.
    waiting_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    qualification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deal_id: Mapped[str | None] = mapped_column(String(36))
    captured_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_leads_status_sla", "status", "sla_due_at"),)


class Decision(Base):
    """One step of a lead's history, with the reason it happened."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    role: Mapped[str | None] = mapped_column(String(10))
    owner: Mapped[str | None] = mapped_column(String(100))
    previous_owner: Mapped[str | None] = mapped_column(String(100))
    rule: Mapped[str | None] = mapped_column(String(100))
    strategy: Mapped[str | None] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(String(1000))
    candidates: Mapped[list[str]] = mapped_column(JSON, default=list)
    skipped: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    sla_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    by: Mapped[str | None] = mapped_column(String(100))
    # What a routing decision (assigned, reassigned, waiting, escalated) was made from, for
    # replay: the configuration version (its directory snapshot and rules version), the
    # rules version, {lead, exclude, state} and how long deciding took.
    config_version: Mapped[str | None] = mapped_column(String(36))
    rules_version: Mapped[int | None] = mapped_column(Integer)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    duration_ms: Mapped[float | None] = mapped_column(Float)


class RepCounter(Base):
    """The counters routing decides on, per rep, kept up to date in the transaction of each
    change so that a decision reads them instead of scanning history:

    - ``rotation`` / ``<role>:<rule id>`` (a pool): leads the rep received from that pool,
      with the time of the last one (round-robin and weighted fairness);
    - ``assigned_on`` / ``YYYY-MM-DD`` (UTC day): leads assigned or reassigned to the rep
      that day, of any pool (daily capacity);
    - ``open`` / ``<role>``: the rep's open leads in that role — SDR: assigned or
      accepted, AE: qualified, AM: every account (load-balanced strategy).
    - ``credit`` / ``<role>:<rule id>``: weighted rotation's credit of the rep in that pool
      (in hundredths of weight; the pool's credits sum to zero — see
      ``strategies.assign_weighted``).
    """

    __tablename__ = "rep_counters"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    rep_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ConfigVersion(Base):
    """One row whose ``version`` changes in the transaction of every change to the rules
    or the team directory: decisions read it to know whether their cached copy is current.

    A fresh UUIDv7 rather than a counter, so a change that rolled back can never leave its
    number to be reused by another change with different content.
    """

    __tablename__ = "config_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(36))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConfigSnapshot(Base):
    """The team directory and rules version in force under one configuration version,
    written in the transaction of the change that made the version (rare), so a decision
    needs to store only the version to be replayable."""

    __tablename__ = "config_snapshots"

    version: Mapped[str] = mapped_column(String(36), primary_key=True)
    rules_version: Mapped[int] = mapped_column(Integer)
    reps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
