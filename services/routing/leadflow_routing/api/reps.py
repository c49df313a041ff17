"""``/v1/reps``: the team directory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from leadflow_routing.models import Rep
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.team import directory
from leadflow_routing.team.schemas import SELF_SERVICE_FIELDS, RepIn, RepOut, RepPatch, RepRole
from leadflow_shared.auth import CurrentPrincipal, Principal, require_roles
from leadflow_shared.errors import Conflict, Forbidden, InvalidInput, NotFound, problem_responses
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/reps", tags=["team"])
Manager = Annotated[Principal, Depends(require_roles("manager"))]


def rep_out(rep: Rep) -> RepOut:
    return RepOut.model_validate(rep, from_attributes=True)


@router.post(
    "",
    status_code=201,
    response_model=RepOut,
    responses=problem_responses(409, s409="a rep with this id exists"),
)
async def create_rep(body: RepIn, session: SessionDep, principal: Manager) -> RepOut:
    repo = RoutingRepository(session)
    if await repo.rep(body.id) is not None:
        raise Conflict(f"rep {body.id} exists; PATCH /v1/reps/{body.id} to change it")
    await _check_manager(repo, body.id, body.manager)
    return rep_out(await directory.add_rep(session, body))


async def _check_manager(repo: RoutingRepository, rep_id: str, manager: str | None) -> None:
    """A rep's manager is another rep of the directory (escalations go there)."""
    if manager is None:
        return
    if manager == rep_id:
        raise InvalidInput.field("manager", "a rep cannot be their own manager")
    if await repo.rep(manager) is None:
        raise InvalidInput.field("manager", f"no rep {manager}; create the manager first")


@router.get("", response_model=list[RepOut])
async def list_reps(
    session: SessionDep, principal: CurrentPrincipal, role: RepRole | None = Query(default=None)
) -> list[RepOut]:
    return [rep_out(r) for r in await RoutingRepository(session).reps(role)]


@router.get("/{rep_id}", response_model=RepOut, responses=problem_responses(404))
async def get_rep(rep_id: str, session: SessionDep, principal: CurrentPrincipal) -> RepOut:
    rep = await RoutingRepository(session).rep(rep_id)
    if rep is None:
        raise NotFound(f"no rep {rep_id}")
    return rep_out(rep)


@router.patch(
    "/{rep_id}",
    response_model=RepOut,
    responses=problem_responses(
        403, 404, s403="a rep changing someone else, or more than their own hours"
    ),
)
async def patch_rep(
    rep_id: str, body: RepPatch, session: SessionDep, principal: CurrentPrincipal
) -> RepOut:
    """Managers change anything; a rep may set their own hours and out-of-office."""
    repo = RoutingRepository(session)
    rep = await repo.rep(rep_id)
    if rep is None:
        raise NotFound(f"no rep {rep_id}")
    changes = body.model_dump(exclude_unset=True)
    if not principal.is_manager and (
        principal.sub != rep_id or not set(changes) <= SELF_SERVICE_FIELDS
    ):
        raise Forbidden("reps may change only their own working_hours and out_of_office")
    if "manager" in changes:
        await _check_manager(repo, rep_id, changes["manager"])
    return rep_out(await directory.change_rep(session, rep, changes))
