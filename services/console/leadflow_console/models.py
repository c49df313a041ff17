"""console's read model: each lead's journey through the funnel, SLA breaches, deals.

It holds no personal data: ids, rep ids, stage times, and the lead's source and campaign
(cleared on erasure).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from leadflow_shared.db import UtcDateTime
from leadflow_shared.messaging import define_messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData()


messaging = define_messaging_tables(Base.metadata)


class LeadJourney(Base):
    """When a lead first reached each funnel stage, and who works it now.

    Events arrive on several topics with no order between them, so every stage keeps the
    earliest time seen and the open/closed state of the SDR's work compares times instead
    of trusting arrival order.
    """

    __tablename__ = "lead_journeys"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str | None] = mapped_column(String(100))
    campaign: Mapped[str | None] = mapped_column(String(200))
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    captured_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    mql_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sdr_assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    qualified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disqualified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deal_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    won_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lost_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    am_assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    # Current SDR work: open while the latest assignment is newer than the latest close
    # (qualified, disqualified or recycled); awaiting acceptance likewise.
    sdr_owner: Mapped[str | None] = mapped_column(String(100), index=True)
    sdr_last_assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sdr_last_accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sdr_last_closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    am_owner: Mapped[str | None] = mapped_column(String(100), index=True)


class SlaBreach(Base):
    __tablename__ = "sla_breaches"

    # The event id: one row per lead.sla_breached event.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str] = mapped_column(String(100))
    sla_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    breached_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Deal(Base):
    __tablename__ = "deals"

    deal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(10))
