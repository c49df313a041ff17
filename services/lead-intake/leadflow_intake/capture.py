"""Capturing leads: deduplicate by email, merge, announce — set-based.

One function serves the live lane (a group of concurrent ``POST /v1/leads``), forms and
CSV import chunks: whatever the number of leads, a handful of statements (insert the new
ones, read the known ones, write merges back, one multi-row outbox insert).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.repository import LeadRepository
from leadflow_intake.schemas import LeadIn
from leadflow_shared.events import EventData, LeadCaptured, LeadMerged
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import Outbox

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "state",
    "employees",
    "industry",
    "website",
    "source",
    "campaign",
)


def normalize_email(email: str) -> str:
    """Case-insensitive, trimmed: the identity used to recognise a returning lead."""
    return email.strip().lower()


@dataclass(frozen=True)
class CaptureResult:
    lead_id: str
    status: Literal["accepted", "merged"]


class LeadVanished(Exception):
    """A lead that blocked an insert was gone when read (erased meanwhile): retry."""


def new_lead_row(incoming: LeadIn, email_normalized: str, now: datetime) -> dict[str, Any]:
    """The ``leads`` row of a first submission."""
    return {
        "id": new_id(),
        "email": str(incoming.email),
        "email_normalized": email_normalized,
        **{name: getattr(incoming, name) for name in PROFILE_FIELDS},
        "utm": {k: v for k, v in incoming.utm.model_dump().items() if v},
        "consent_marketing": incoming.consent.marketing,
        "custom": dict(incoming.custom),
        "created_at": now,
        "updated_at": now,
    }


def merge_into(row: dict[str, Any], incoming: LeadIn) -> list[str]:
    """Apply the newer submission's non-empty values to ``row``; the changed field names."""
    changed: list[str] = []
    for name in PROFILE_FIELDS:
        value = getattr(incoming, name)
        if value is not None and value != row[name]:
            row[name] = value
            changed.append(name)
    utm = {k: v for k, v in incoming.utm.model_dump().items() if v}
    if utm and utm != row["utm"]:
        row["utm"] = {**row["utm"], **utm}
        changed.append("utm")
    if incoming.consent.marketing and not row["consent_marketing"]:
        row["consent_marketing"] = True
        changed.append("consent")
    if incoming.custom:
        merged = {**row["custom"], **incoming.custom}
        if merged != row["custom"]:
            row["custom"] = merged
            changed.append("custom")
    return changed


def profile_of(row: dict[str, Any]) -> dict[str, Any]:
    """The lead's profile as carried by ``lead.captured`` / ``lead.merged`` (a copy)."""
    return {
        "lead_id": row["id"],
        "email": row["email"],
        **{name: row[name] for name in PROFILE_FIELDS},
        "utm": dict(row["utm"]),
        "consent_marketing": row["consent_marketing"],
        "custom": dict(row["custom"]),
    }


async def capture_leads(
    session: AsyncSession,
    outbox: Outbox,
    leads: Sequence[LeadIn],
    *,
    topic: str | None = None,
    traceparents: Sequence[str | None] | None = None,
) -> list[CaptureResult]:
    """Store new leads and merge known ones (same normalised email), in order; emit
    ``lead.captured`` / ``lead.merged`` on ``topic`` (default: the events' own topic).

    ``traceparents``, one per lead, stamps each lead's event with the trace of the request
    that brought it (default: the trace in hand for all). Two submissions of one email in
    ``leads`` behave as if posted one after the other. Raises :class:`LeadVanished` in a
    rare race with erasure (the caller retries).
    """
    now = utcnow()
    repo = LeadRepository(session)
    keys = [normalize_email(lead.email) for lead in leads]
    first_of: dict[str, int] = {}
    candidates: list[dict[str, Any]] = []
    for index, (key, lead) in enumerate(zip(keys, leads, strict=True)):
        if key not in first_of:
            first_of[key] = index
            candidates.append(new_lead_row(lead, key, now))
    inserted = await repo.insert_new(candidates)
    rows = {row["email_normalized"]: row for row in candidates if row["id"] in inserted}
    rows.update(
        await repo.rows_by_email(
            r["email_normalized"] for r in candidates if r["id"] not in inserted
        )
    )
    events: list[EventData] = []
    results: list[CaptureResult] = []
    merged_rows: dict[str, dict[str, Any]] = {}
    for index, (key, lead) in enumerate(zip(keys, leads, strict=True)):
        row = rows.get(key)
        if row is None:
            raise LeadVanished(key)
        if first_of[key] == index and row["id"] in inserted:
            events.append(LeadCaptured(**profile_of(row), captured_at=now))
            results.append(CaptureResult(row["id"], "accepted"))
            continue
        changed = merge_into(row, lead)
        row["updated_at"] = now
        merged_rows[row["id"]] = row
        events.append(LeadMerged(**profile_of(row), changed_fields=changed))
        results.append(CaptureResult(row["id"], "merged"))
    await repo.update_rows(merged_rows.values())
    await outbox.add_many(session, events, topic=topic, traceparents=traceparents)
    return results


async def capture_lead(session: AsyncSession, outbox: Outbox, incoming: LeadIn) -> CaptureResult:
    """Store a new lead or merge into the known one with the same email; emit the event."""
    (result,) = await capture_leads(session, outbox, [incoming])
    return result
