"""lead-intake's tables: leads, engagements, forms, idempotency keys, owners read model,
CSV imports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from leadflow_shared.db import UtcDateTime
from leadflow_shared.messaging import define_messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData()


messaging = define_messaging_tables(Base.metadata)


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Personal data is nulled on erasure; the row stays as a tombstone for the id.
    email: Mapped[str | None] = mapped_column(String(320))
    email_normalized: Mapped[str | None] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    country: Mapped[str | None] = mapped_column(String(2))
    state: Mapped[str | None] = mapped_column(String(100))
    employees: Mapped[int | None] = mapped_column(Integer)
    industry: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(100))
    campaign: Mapped[str | None] = mapped_column(String(200))
    utm: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    consent_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Derived on capture (normalise.py); null on rows captured before they existed.
    domain: Mapped[str | None] = mapped_column(String(253))
    free_mail: Mapped[bool | None] = mapped_column(Boolean)
    disposable: Mapped[bool | None] = mapped_column(Boolean)
    role_account: Mapped[bool | None] = mapped_column(Boolean)
    seniority: Mapped[str | None] = mapped_column(String(20))
    function: Mapped[str | None] = mapped_column(String(30))
    # Optional fields that could not be normalised, as given (field → value).
    unnormalized: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Merges keep history: [{at, field, old, new, source}], newest last (capped).
    history: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Attribution {source, campaign, utm, at} of the first and of the latest submission.
    first_touch: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_touch: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Marketing consent {marketing, at, source, text}; null until consent is given.
    consent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The account matched at capture {account_id, name, domain, owner, match, confidence}.
    account: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Engagement(Base):
    __tablename__ = "engagements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    type: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AnonymousEngagement(Base):
    """An engagement for an email no lead has yet (a webinar list uploaded before the
    form fill): kept by the folded email, attached when that lead is captured."""

    __tablename__ = "anonymous_engagements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email_key: Mapped[str] = mapped_column(String(320), index=True)
    type: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Account(Base):
    """A customer or target company (admin CSV, won deals) that leads are matched to."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The folded name (legal suffixes, case and punctuation dropped): the name match key.
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    # Registrable domain; one account per domain.
    domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    owner: Mapped[str | None] = mapped_column(String(100))
    # Where the owner came from: import (an admin's list), ae (a won deal), am (its AM).
    owner_role: Mapped[str | None] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(10))  # import | deal
    deal_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Form(Base):
    __tablename__ = "forms"

    form_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    allowed_origins: Mapped[list[str]] = mapped_column(JSON)
    redirect_url: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The embeddable page's fields ([{name, label, type, required}]); None: the default set.
    fields: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    client: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # SHA-256 of the validated body the key was first used with (null on older records):
    # the same key with another body is refused.
    body_hash: Mapped[str | None] = mapped_column(String(64))


class LeadOwner(Base):
    """Who owns the lead per role, learned from ``leads.routing`` (for ownership checks)."""

    __tablename__ = "lead_owners"

    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))


class LeadImport(Base):
    """One CSV import: received into ``import_rows``, then captured chunk by chunk.

    ``claimed_by``/``claimed_until`` is a lease: the process receiving or processing the
    import renews it with every chunk; when it lapses another process (or this one after
    a restart) resumes processing, or fails an upload that was cut off.
    """

    __tablename__ = "lead_imports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # receiving → processing → done; failed when the upload was refused or cut off.
    status: Mapped[str] = mapped_column(String(20), index=True)
    filename: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(2000))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StagedImportRow(Base):
    """A received CSV row not captured yet (values keyed by lead field); deleted in the
    transaction that captures it, so a row is captured exactly once."""

    __tablename__ = "import_rows"

    import_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    values: Mapped[dict[str, str]] = mapped_column(JSON)


class RejectedImportRow(Base):
    """The first rejected rows of an import with their errors (the rest are counted)."""

    __tablename__ = "import_rejections"

    import_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON)
