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

from leadflow_intake.accounts import match_rows
from leadflow_intake.engagements import attach_anonymous
from leadflow_intake.normalise import FieldWarning, Normalised, derived, normalise
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
# Profile fields whose value is the normalised one (the others are taken as given).
NORMALISED_FIELDS = frozenset({"country", "phone", "employees"})
DERIVED_FIELDS = ("domain", "free_mail", "disposable", "role_account", "seniority", "function")


@dataclass(frozen=True)
class CaptureResult:
    lead_id: str
    status: Literal["accepted", "merged"]
    # Optional fields kept as given because they could not be normalised.
    warnings: tuple[FieldWarning, ...] = ()


class LeadVanished(Exception):
    """A lead that blocked an insert was gone when read (erased meanwhile): retry."""


def _given(incoming: LeadIn, clean: Normalised, name: str) -> Any:
    return getattr(clean, name) if name in NORMALISED_FIELDS else getattr(incoming, name)


def _derive(row: dict[str, Any]) -> None:
    row.update(derived(row["email"], row["website"], row["title"]))


# A lead keeps at most this many history entries (the oldest go first).
HISTORY_LIMIT = 100


def touch_of(incoming: LeadIn, now: datetime) -> dict[str, Any]:
    """One submission's attribution: ``{source, campaign, utm, at}``."""
    return {
        "source": incoming.source,
        "campaign": incoming.campaign,
        "utm": {k: v for k, v in incoming.utm.model_dump().items() if v},
        "at": now.isoformat(),
    }


def consent_of(incoming: LeadIn, now: datetime, channel: str) -> dict[str, Any]:
    """``{marketing, at, source, text}``: when, through what and to which text version."""
    return {
        "marketing": incoming.consent.marketing,
        "at": now.isoformat(),
        "source": incoming.source or channel,
        "text": incoming.consent.text,
    }


def new_lead_row(
    incoming: LeadIn, clean: Normalised, now: datetime, channel: str = "api"
) -> dict[str, Any]:
    """The ``leads`` row of a first submission."""
    touch = touch_of(incoming, now)
    row = {
        "id": new_id(),
        "email": clean.email,
        "email_normalized": clean.email_key,
        **{name: _given(incoming, clean, name) for name in PROFILE_FIELDS},
        "utm": {k: v for k, v in incoming.utm.model_dump().items() if v},
        "consent_marketing": incoming.consent.marketing,
        "custom": dict(incoming.custom),
        "unnormalized": dict(clean.unnormalized),
        "history": [],
        "first_touch": touch,
        "last_touch": touch,
        "consent": consent_of(incoming, now, channel) if incoming.consent.marketing else None,
        "account": None,
        "created_at": now,
        "updated_at": now,
    }
    _derive(row)
    return row


def merge_into(
    row: dict[str, Any],
    incoming: LeadIn,
    clean: Normalised,
    now: datetime | None = None,
    channel: str = "api",
) -> list[str]:
    """Merge a newer submission into ``row``; the changed field names.

    Blanks are filled; a value the submission changes is replaced and the old one kept in
    ``history`` (``{at, field, old, new, source}``). ``first_touch`` stays, ``last_touch``
    becomes this submission's attribution. Consent given now (or to a new text version)
    is recorded with its time, source and text.
    """
    now = now or utcnow()
    at = now.isoformat()
    by = incoming.source or channel
    history: list[dict[str, Any]] = list(row.get("history") or [])
    if row.get("first_touch") is None:  # a lead stored before touches were kept
        created = row.get("created_at")
        row["first_touch"] = {
            "source": row["source"],
            "campaign": row["campaign"],
            "utm": dict(row["utm"] or {}),
            "at": created.isoformat() if isinstance(created, datetime) else None,
        }

    def record(field: str, old: Any, new: Any) -> None:
        if old not in (None, "", {}):
            history.append({"at": at, "field": field, "old": old, "new": new, "source": by})

    changed: list[str] = []
    for name in PROFILE_FIELDS:
        value = _given(incoming, clean, name)
        if value is not None and value != row[name]:
            record(name, row[name], value)
            row[name] = value
            changed.append(name)
    unnormalized = {
        **{k: v for k, v in (row.get("unnormalized") or {}).items() if k not in changed},
        **clean.unnormalized,
    }
    if unnormalized != (row.get("unnormalized") or {}):
        row["unnormalized"] = unnormalized
    utm = {k: v for k, v in incoming.utm.model_dump().items() if v}
    if utm and utm != row["utm"]:
        merged_utm = {**row["utm"], **utm}
        if merged_utm != row["utm"]:
            record("utm", dict(row["utm"]), merged_utm)
            row["utm"] = merged_utm
            changed.append("utm")
    if incoming.consent.marketing:
        current = row.get("consent") or {}
        if not row["consent_marketing"] or (
            incoming.consent.text is not None and incoming.consent.text != current.get("text")
        ):
            given = consent_of(incoming, now, channel)
            record("consent", current, given)
            row["consent"] = given
            row["consent_marketing"] = True
            changed.append("consent")
    if incoming.custom:
        merged = {**row["custom"], **incoming.custom}
        if merged != row["custom"]:
            for key, value in incoming.custom.items():
                if key in row["custom"] and row["custom"][key] != value:
                    record(f"custom.{key}", row["custom"][key], value)
            row["custom"] = merged
            changed.append("custom")
    row["history"] = history[-HISTORY_LIMIT:]
    row["last_touch"] = touch_of(incoming, now)
    _derive(row)  # follows the merged title/website; not listed as changed by itself
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
        "email_normalized": row["email_normalized"],
        **{name: row[name] for name in DERIVED_FIELDS},
        "unnormalized": dict(row["unnormalized"] or {}),
        "first_touch": row["first_touch"],
        "last_touch": row["last_touch"],
        "consent": row["consent"],
        "account": row.get("account"),
    }


async def capture_leads(
    session: AsyncSession,
    outbox: Outbox,
    leads: Sequence[LeadIn],
    *,
    topic: str | None = None,
    traceparents: Sequence[str | None] | None = None,
    normalised: Sequence[Normalised] | None = None,
    channel: str = "api",
) -> list[CaptureResult]:
    """Store new leads and merge known ones (same normalised email), in order; emit
    ``lead.captured`` / ``lead.merged`` on ``topic`` (default: the events' own topic).

    Each lead is normalised first (``normalised``: already done by the caller, one per
    lead); the dedup key is the folded email. ``traceparents``, one per lead, stamps each
    lead's event with the trace of the request that brought it (default: the trace in hand
    for all). Two submissions of one email in
    ``leads`` behave as if posted one after the other. Raises :class:`LeadVanished` in a
    rare race with erasure (the caller retries).
    """
    now = utcnow()
    repo = LeadRepository(session)
    cleaned = [normalise(lead) for lead in leads] if normalised is None else list(normalised)
    keys = [clean.email_key for clean in cleaned]
    first_of: dict[str, int] = {}
    candidates: list[dict[str, Any]] = []
    for index, (clean, lead) in enumerate(zip(cleaned, leads, strict=True)):
        if clean.email_key not in first_of:
            first_of[clean.email_key] = index
            candidates.append(new_lead_row(lead, clean, now, channel))
    # The account match (in memory: see accounts.py) of new leads goes in with the insert.
    await match_rows(session, candidates)
    inserted = await repo.insert_new(candidates)
    rows = {row["email_normalized"]: row for row in candidates if row["id"] in inserted}
    rows.update(
        await repo.rows_by_email(
            r["email_normalized"] for r in candidates if r["id"] not in inserted
        )
    )
    results: list[CaptureResult] = []
    merged_rows: dict[str, dict[str, Any]] = {}
    # (row, changed fields or None for a capture, the profile as of this submission)
    announced: list[tuple[dict[str, Any], list[str] | None, dict[str, Any]]] = []
    for index, (key, lead, clean) in enumerate(zip(keys, leads, cleaned, strict=True)):
        row = rows.get(key)
        if row is None:
            raise LeadVanished(key)
        warnings = tuple(clean.warnings)
        if first_of[key] == index and row["id"] in inserted:
            announced.append((row, None, profile_of(row)))
            results.append(CaptureResult(row["id"], "accepted", warnings))
            continue
        changed = merge_into(row, lead, clean, now, channel)
        row["updated_at"] = now
        merged_rows[row["id"]] = row
        announced.append((row, changed, profile_of(row)))
        results.append(CaptureResult(row["id"], "merged", warnings))
    if merged_rows:  # a merge may bring a company or website that matches now
        await match_rows(session, list(merged_rows.values()))
    events: list[EventData] = [
        LeadCaptured(**profile, captured_at=now)
        if changed is None
        else LeadMerged(**{**profile, "account": row.get("account")}, changed_fields=changed)
        for row, changed, profile in announced
    ]
    await repo.update_rows(merged_rows.values())
    await outbox.add_many(session, events, topic=topic, traceparents=traceparents)
    # Touches recorded before the lead existed (webinar lists …) attach now and are
    # announced on their own topic after the lead's event, so scoring counts them.
    touches = await attach_anonymous(
        session, {row["email_normalized"]: row["id"] for row, _, _ in announced}, now
    )
    if touches:
        await outbox.add_many(session, touches)
    return results


async def capture_lead(session: AsyncSession, outbox: Outbox, incoming: LeadIn) -> CaptureResult:
    """Store a new lead or merge into the known one with the same email; emit the event."""
    (result,) = await capture_leads(session, outbox, [incoming])
    return result
