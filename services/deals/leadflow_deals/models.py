"""deals' tables: deals, their stage and owner history, quotas, erased leads, the SDRs'
qualifications."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from leadflow_shared.db import Money, UtcDateTime
from leadflow_shared.messaging import define_messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData()


messaging = define_messaging_tables(Base.metadata)

_OPEN = text("closed_at IS NULL")


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        # One open deal per lead, even if two AE assignments race.
        Index(
            "uq_deals_open_lead",
            "lead_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    stage: Mapped[str] = mapped_column(String(20), index=True)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    close_date: Mapped[date | None] = mapped_column(Date)
    # Personal data (the lead's company and free text about it): nulled on erasure.
    name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    close_reason: Mapped[str | None] = mapped_column(String(5000))
    notes: Mapped[str | None] = mapped_column(String(5000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StageChange(Base):
    """Every stage a deal entered: ``from_stage`` is null for the opening entry."""

    __tablename__ = "deal_stage_history"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(200))


class OwnerChange(Base):
    """Every owner a deal had after the first, with routing's reason."""

    __tablename__ = "deal_owner_history"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    from_owner: Mapped[str] = mapped_column(String(100))
    to_owner: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(5000))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(200))


class Quota(Base):
    __tablename__ = "quotas"

    rep_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


class ErasedLead(Base):
    """Leads erased (``lead.erased``), so a late assignment never brings their data back:
    ``privacy.erasure`` and ``leads.routing`` are different topics with no mutual order."""

    __tablename__ = "erased_leads"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LeadQualification(Base):
    """The SDR's qualification of a lead (``lead.qualified``: framework, fields, notes), shown
    on the lead's deals. Kept per lead, not per deal: ``leads.qualification`` and
    ``leads.routing`` are different topics, so it may arrive before or after the deal opens.
    The latest qualification wins; erasure deletes it."""

    __tablename__ = "lead_qualifications"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    framework: Mapped[str] = mapped_column(String(20))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    notes: Mapped[str | None] = mapped_column(String(5000))
    qualified_by: Mapped[str] = mapped_column(String(100))
    qualified_at: Mapped[datetime] = mapped_column(UtcDateTime)
