"""What routing does with each event it consumes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.assignment import assign_am, assign_sdr, record
from leadflow_routing.counters import open_work_counted
from leadflow_routing.models import RoutedLead, outbox
from leadflow_routing.repository import RoutingRepository
from leadflow_shared.events import (
    CloudEvent,
    DealCreated,
    DealLost,
    DealWon,
    LeadCaptured,
    LeadErased,
    LeadMerged,
    LeadScored,
    LeadUpdated,
)
from leadflow_shared.events.schemas import AccountMatch
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import HandlerRegistry
from leadflow_shared.observability import trace_context

handlers = HandlerRegistry()
ROUTING_FIELDS = ("country", "state", "employees", "industry", "title", "source", "campaign")


async def _lead(session: AsyncSession, lead_id: str) -> RoutedLead:
    repo = RoutingRepository(session)
    lead = await repo.lead(lead_id, for_update=True)
    if lead is None:
        lead = RoutedLead(id=lead_id, profile={}, updated_at=utcnow())
        repo.add(lead)
    return lead


async def _route_if_ready(session: AsyncSession, lead: RoutedLead) -> None:
    if lead.mql and lead.profile_known and lead.status == "new" and not lead.erased:
        await assign_sdr(session, outbox, lead, utcnow())


async def _profile(session: AsyncSession, data: LeadCaptured | LeadMerged | LeadUpdated) -> None:
    lead = await _lead(session, data.lead_id)
    if lead.erased:
        return
    lead.profile = _merged_profile(lead.profile or {}, data)
    lead.company = data.company
    lead.profile_known = True
    if isinstance(data, LeadCaptured):
        lead.captured_at = data.captured_at
    lead.updated_at = utcnow()
    await _route_if_ready(session, lead)


def _merged_profile(
    previous: dict[str, Any], data: LeadCaptured | LeadMerged | LeadUpdated
) -> dict[str, object]:
    """What rules see of the lead after ``data``: its routing fields, the matched account
    and the fit grade (kept from before when the event does not carry them)."""
    profile: dict[str, object] = {name: getattr(data, name) for name in ROUTING_FIELDS}
    # The matched account: an event that carries the field sets it (null: no account); one
    # without it (older producers) keeps what routing knew.
    if "account" in data.model_fields_set:
        profile["account"] = _account(data.account)
    elif previous.get("account") is not None:
        profile["account"] = previous["account"]
    fit_grade = getattr(data, "fit_grade", None)
    if fit_grade is not None or previous.get("fit_grade") is not None:
        profile["fit_grade"] = fit_grade if fit_grade is not None else previous["fit_grade"]
    return profile


def _account(match: AccountMatch | None) -> dict[str, object] | None:
    """What rules and the ``account_owner`` strategy read of the matched account."""
    if match is None:
        return None
    return {
        "account_id": match.account_id,
        "owner": match.owner,
        "match": match.match,
        "confidence": match.confidence,
    }


_LEADS = cast(Table, RoutedLead.__table__)
_KNOWN_FOR_UPDATE = (
    select(_LEADS.c.id, _LEADS.c.profile, _LEADS.c.mql, _LEADS.c.status, _LEADS.c.erased)
    .where(_LEADS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_LEADS.c.id)
    .with_for_update()
)
_INSERT_LEADS = insert(_LEADS)
_UPDATE_PROFILES = (
    update(_LEADS)
    .where(_LEADS.c.id == bindparam("b_id"))
    .values(
        profile=bindparam("profile"),
        company=bindparam("company"),
        profile_known=True,
        captured_at=bindparam("captured_at"),
        updated_at=bindparam("updated_at"),
    )
)


@handlers.on_batch(LeadCaptured)
async def on_captured(
    session: AsyncSession, events: Sequence[tuple[CloudEvent, LeadCaptured]]
) -> None:
    """A run of captured leads in a few set-based statements: one locking read of the
    leads routing already knows, one insert of the new ones, one update of the others.

    A lead this capture makes ready to route (an MQL whose score arrived first), one the
    session already holds as an object (an earlier run of the same batch), or one seen
    twice in the run takes the per-event path instead, in order, so routing decisions and
    the session's objects are exactly as one event at a time would leave them."""
    ids = sorted({data.lead_id for _, data in events})
    known = {row.id: row for row in (await session.execute(_KNOWN_FOR_UPDATE, {"ids": ids})).all()}
    in_session = {
        key[1][0] for key in session.sync_session.identity_map.keys() if key[0] is RoutedLead
    }
    seen = Counter(data.lead_id for _, data in events)
    now = utcnow()
    new_rows: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for event, data in events:
        row = known.get(data.lead_id)
        one_at_a_time = (
            data.lead_id in in_session
            or seen[data.lead_id] > 1
            or (row is not None and row.mql and row.status == "new" and not row.erased)
        )
        if one_at_a_time:
            with trace_context(event.traceparent):
                await _profile(session, data)
            continue
        if row is None:
            new_rows.append(
                {
                    "id": data.lead_id,
                    "profile": _merged_profile({}, data),
                    "profile_known": True,
                    "company": data.company,
                    "captured_at": data.captured_at,
                    "updated_at": now,
                }
            )
        elif not row.erased:
            updates.append(
                {
                    "b_id": data.lead_id,
                    "profile": _merged_profile(row.profile or {}, data),
                    "company": data.company,
                    "captured_at": data.captured_at,
                    "updated_at": now,
                }
            )
    with session.no_autoflush:
        if new_rows:
            await session.execute(_INSERT_LEADS, new_rows)
        if updates:
            await session.execute(_UPDATE_PROFILES, updates)


@handlers.on(LeadMerged)
async def on_merged(session: AsyncSession, event: CloudEvent, data: LeadMerged) -> None:
    await _profile(session, data)


@handlers.on(LeadUpdated)
async def on_updated(session: AsyncSession, event: CloudEvent, data: LeadUpdated) -> None:
    await _profile(session, data)


@handlers.on(LeadScored)
async def on_scored(session: AsyncSession, event: CloudEvent, data: LeadScored) -> None:
    """An MQL is routed to an SDR once; later scores only update what rules can see."""
    lead = await _lead(session, data.lead_id)
    lead.score = data.score
    # Fit grade, once lead.scored carries one (rules may match ``fit_grade``).
    fit_grade = getattr(data, "fit_grade", None)
    if fit_grade is not None and not lead.erased:
        lead.profile = {**(lead.profile or {}), "fit_grade": fit_grade}
    if data.mql and not lead.mql:
        lead.mql = True
    lead.updated_at = utcnow()
    await _route_if_ready(session, lead)


@handlers.on(DealCreated)
async def on_deal_created(session: AsyncSession, event: CloudEvent, data: DealCreated) -> None:
    lead = await _lead(session, data.lead_id)
    lead.deal_id = data.deal_id
    await RoutingRepository(session).add_decision(
        record(
            lead,
            "deal_created",
            f"deal {data.deal_id} opened in {data.stage}",
            utcnow(),
            role="ae",
            owner=data.owner,
        )
    )


@handlers.on(DealWon)
async def on_deal_won(session: AsyncSession, event: CloudEvent, data: DealWon) -> None:
    """Closed Won: the account goes to an account manager."""
    lead = await _lead(session, data.lead_id)
    lead.deal_id = data.deal_id
    now = utcnow()
    await RoutingRepository(session).add_decision(
        record(lead, "deal_won", f"deal {data.deal_id} won", now, role="ae", owner=data.owner)
    )
    if lead.am is None:
        await assign_am(session, outbox, lead, now)


@handlers.on(DealLost)
async def on_deal_lost(session: AsyncSession, event: CloudEvent, data: DealLost) -> None:
    lead = await _lead(session, data.lead_id)
    repo = RoutingRepository(session)
    async with open_work_counted(repo, lead):
        lead.status = "lost"
    lead.updated_at = utcnow()
    await repo.add_decision(
        record(
            lead,
            "deal_lost",
            f"deal {data.deal_id} lost",
            lead.updated_at,
            role="ae",
            owner=data.owner,
        )
    )


@handlers.on(LeadErased)
async def on_erased(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """Forget the profile and qualification notes; keep ids and decisions (no personal data)."""
    lead = await _lead(session, data.lead_id)
    lead.profile = {}
    lead.company = None
    lead.qualification = None
    lead.erased = True
    lead.sla_due_at = None
    lead.updated_at = utcnow()
