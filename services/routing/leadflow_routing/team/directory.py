"""Changes to the team directory. Each one also changes the configuration version in the
same transaction, so every replica's cached directory is refreshed at its next decision,
and gives the leads waiting for a rep of that role their chance at once (a new account
manager takes the won accounts nobody could take; so does one back from out of office)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.models import Rep
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.sla import retry_waiting_for
from leadflow_routing.team.schemas import OutOfOffice, RepIn
from leadflow_shared.ids import utcnow


async def add_rep(session: AsyncSession, body: RepIn) -> Rep:
    now = utcnow()
    data = body.model_dump()
    data["email"] = str(body.email)
    data["working_hours"] = body.working_hours.model_dump() if body.working_hours else None
    data["out_of_office"] = bool(body.out_of_office)
    data["out_of_office_periods"] = [p.stored() for p in body.out_of_office_periods or []]
    rep = Rep(**data, created_at=now, updated_at=now)
    repo = RoutingRepository(session)
    repo.add(rep)
    await session.flush()
    await repo.config_changed()
    await retry_waiting_for(session, rep.role)
    return rep


async def change_rep(session: AsyncSession, rep: Rep, changes: dict[str, Any]) -> Rep:
    """Apply validated ``changes`` (field → value) to ``rep``."""
    for name, value in changes.items():
        if name == "email" and value is not None:
            value = str(value)
        elif name == "out_of_office_periods":
            value = [OutOfOffice.model_validate(p).stored() for p in value]
        setattr(rep, name, value)
    rep.updated_at = utcnow()
    await RoutingRepository(session).config_changed()
    await retry_waiting_for(session, rep.role)
    return rep
