"""scoring's tables: the fit read model, engagements, scores, owners, rules versions.

Only what scoring needs is kept: no email, names or phone; engagements without properties.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from leadflow_shared.db import UtcDateTime
from leadflow_shared.messaging import define_messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData()


messaging = define_messaging_tables(Base.metadata)


class LeadProfileRow(Base):
    """The profile fields fit rules test, from ``lead.captured|merged|updated``."""

    __tablename__ = "lead_profiles"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2))
    state: Mapped[str | None] = mapped_column(String(100))
    employees: Mapped[int | None] = mapped_column(Integer)
    industry: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(100))
    campaign: Mapped[str | None] = mapped_column(String(200))
    consent_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    utm: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Domain signals (contract v2), see scoring.FitProfile; migration d5f9b3a70006.
    domain: Mapped[str | None] = mapped_column(String(253))
    free_mail: Mapped[bool] = mapped_column(Boolean, default=False)
    disposable: Mapped[bool] = mapped_column(Boolean, default=False)
    role_account: Mapped[bool] = mapped_column(Boolean, default=False)
    seniority: Mapped[str | None] = mapped_column(String(20))
    function: Mapped[str | None] = mapped_column(String(50))
    account_match: Mapped[str | None] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EngagementRow(Base):
    """One engagement; stored even before the lead's profile arrives."""

    __tablename__ = "engagements"

    engagement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LeadScoreRow(Base):
    """The latest score; ``mql_at`` is set the first time the lead becomes an MQL and is
    cleared only when routing recycles the lead (``recycled_at``), so it can qualify again."""

    __tablename__ = "lead_scores"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    fit: Mapped[int] = mapped_column(Integer)
    engagement: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(10))
    # Contract v2; null on scores stored before they existed (until the lead is rescored).
    fit_grade: Mapped[str | None] = mapped_column(String(1), nullable=True)
    engagement_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mql: Mapped[bool] = mapped_column(Boolean)
    mql_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recycled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rules_version: Mapped[int] = mapped_column(Integer)
    scored_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LeadOwner(Base):
    """Who owns the lead per role, learned from ``leads.routing`` (for read access)."""

    __tablename__ = "lead_owners"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))


class ErasedLead(Base):
    """Tombstone (id only): events arriving after ``lead.erased`` must not recreate data."""

    __tablename__ = "erased_leads"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RulesVersionRow(Base):
    __tablename__ = "scoring_rules"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
