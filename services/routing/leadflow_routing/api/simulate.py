"""``POST /v1/routing/simulate``: a draft rule set (and draft rep changes) replayed over the
decisions of a period — who would have received what, against what actually happened."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadflow_routing.assignment import lead_attributes
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.rules.document import RuleSet
from leadflow_routing.simulation import PastLead, simulate
from leadflow_routing.team.availability import Absence, RepView
from leadflow_routing.team.schemas import RepPatch, RepRole
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import InvalidInput
from leadflow_shared.service import SessionDep
from leadflow_shared.validation import READ_ONLY_FIELDS, Identifier, without_read_only

router = APIRouter(prefix="/v1/routing/simulate", tags=["rules"])
Manager = Annotated[Principal, Depends(require_roles("manager"))]
SimulatedRole = Literal["sdr", "ae"]
# What GET /v1/reps returns but a draft change cannot set: ignored, not refused.
_REP_READ_ONLY = READ_ONLY_FIELDS | {"name", "email"}


class DraftRep(RepPatch):
    """A change to one rep for the simulation only (the directory is not touched): the
    fields of ``PATCH /v1/reps/{id}``; an unknown ``id`` adds a rep (``role`` required).
    A rep as ``GET /v1/reps`` returns it is accepted as is."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    role: RepRole | None = None

    @model_validator(mode="before")
    @classmethod
    def _ignore_read_only(cls, value: Any) -> Any:
        value = without_read_only(value, _REP_READ_ONLY)
        if isinstance(value, dict):
            if isinstance(value.get("role"), str):
                value["role"] = value["role"].lower()
            # GET shows the v1 flag and the periods side by side; as a draft, the periods
            # (when given) say it all.
            if "out_of_office_periods" in value and isinstance(value.get("out_of_office"), bool):
                value.pop("out_of_office")
        return value


def _sdr_only() -> list[SimulatedRole]:
    return ["sdr"]


class SimulationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rules: RuleSet
    reps: list[DraftRep] = Field(default_factory=list, max_length=500)
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    roles: list[SimulatedRole] = Field(default_factory=_sdr_only, min_length=1)
    limit: int = Field(default=1000, ge=1, le=20_000)

    @field_validator("roles", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v.lower() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone offset")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SimulationRequest:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("`to` must be after `from`")
        return self


_REP_VIEW_FIELDS = frozenset(f.name for f in dataclasses.fields(RepView))


def apply_drafts(reps: list[RepView], drafts: list[DraftRep]) -> list[RepView]:
    """The directory with the draft changes applied (nothing is stored)."""
    by_id = {rep.id: rep for rep in reps}
    for index, draft in enumerate(drafts):
        changes = draft.model_dump(exclude_unset=True, exclude={"id"})
        if "territories" in changes:
            changes["territories"] = tuple(changes["territories"])
        if "segments" in changes:
            changes["segments"] = tuple(changes["segments"])
        if "working_hours" in changes and draft.working_hours is not None:
            changes["working_hours"] = draft.working_hours.model_dump()
        if "out_of_office_periods" in changes:
            changes["out_of_office_periods"] = tuple(
                Absence(p.start, p.end, p.reason) for p in draft.out_of_office_periods or []
            )
        changes = {k: v for k, v in changes.items() if k in _REP_VIEW_FIELDS}
        current = by_id.get(draft.id)
        if current is None:
            if draft.role is None:
                raise InvalidInput.field(
                    f"reps.{index}.role", f"{draft.id} is not a known rep: give its role"
                )
            current = RepView(id=draft.id, role=draft.role)
        by_id[draft.id] = dataclasses.replace(current, **changes)
    return [by_id[rep_id] for rep_id in sorted(by_id)]


@router.post("")
async def simulate_rules(
    body: SimulationRequest, session: SessionDep, principal: Manager
) -> dict[str, Any]:
    """Replay the period's routing through the draft rules and reps, each lead at the time
    of its first decision with what routing knew of it then (the decision's recorded
    inputs), counters starting empty: per rep the leads received actually and under the
    draft, ``spread`` and ``gini`` per pool, the leads that would change owner, capacity
    breaches and why leads would find nobody. SDR: every MQL captured in the period (also
    those still waiting); AE: every first AE decision in the period. Deterministic."""
    repo = RoutingRepository(session)
    reps = apply_drafts(await repo.all_reps(), body.reps)
    past: list[PastLead] = []
    for role in body.roles:
        past.extend(await _past(repo, role, body))
    report = simulate(body.rules, reps, past)
    out = asdict(report)
    out["period"] = {"from": body.start, "to": body.end}
    return out


async def _past(repo: RoutingRepository, role: str, body: SimulationRequest) -> list[PastLead]:
    if role == "sdr":
        leads = await repo.mql_leads(body.limit, start=body.start, end=body.end)
        first = await repo.first_decisions("sdr", [lead.id for lead in leads])
        past = []
        for lead in leads:
            decision = first.get(lead.id)
            recorded = (decision.inputs or {}).get("lead") if decision is not None else None
            past.append(
                PastLead(
                    lead.id,
                    recorded if recorded is not None else lead_attributes(lead),
                    decision.at if decision is not None else (lead.captured_at or lead.updated_at),
                    decision.owner if decision is not None else lead.sdr,
                    role="sdr",
                    actual_rule=decision.rule if decision is not None else None,
                )
            )
        return past
    decisions = await repo.first_decisions_in(role, body.start, body.end, body.limit)
    by_id = {lead.id: lead for lead in await repo.leads_by_id([d.lead_id for d in decisions])}
    past = []
    for decision in decisions:
        known = by_id.get(decision.lead_id)
        if known is None or known.erased:
            continue  # erased: not replayed, whatever its decisions recorded
        recorded = (decision.inputs or {}).get("lead")
        past.append(
            PastLead(
                decision.lead_id,
                recorded if recorded is not None else lead_attributes(known),
                decision.at,
                decision.owner,
                role=role,
                actual_rule=decision.rule,
            )
        )
    return past
