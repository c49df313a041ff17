"""The deal pipeline: stage ids, their probabilities and which moves are allowed."""

from __future__ import annotations

from typing import Final, get_args

from leadflow_shared.events.schemas import StageId

OPEN_STAGES: Final[tuple[StageId, ...]] = ("discovery", "demo", "proposal", "negotiation")
CLOSED_STAGES: Final[tuple[StageId, ...]] = ("closed_won", "closed_lost")
ALL_STAGES: Final[tuple[StageId, ...]] = get_args(StageId)
FIRST_STAGE: Final[StageId] = "discovery"

PROBABILITY: Final[dict[StageId, int]] = {
    "discovery": 10,
    "demo": 25,
    "proposal": 50,
    "negotiation": 75,
    "closed_won": 100,
    "closed_lost": 0,
}


class StageMoveRefused(Exception):
    """A stage change the pipeline does not allow from the deal's current stage."""


def is_open(stage: StageId) -> bool:
    return stage in OPEN_STAGES


def check_stage_move(current: StageId, target: StageId) -> None:
    """Allow an open deal to move forward to any later open stage or back exactly one.

    Closed stages are reached only by closing the deal (outcome and reason recorded),
    and closed deals never move again.
    """
    if not is_open(current):
        raise StageMoveRefused(f"the deal is {current}; closed deals cannot change")
    if not is_open(target):
        raise StageMoveRefused(f"{target} is reached by POST /v1/deals/{{deal_id}}/close")
    here, there = OPEN_STAGES.index(current), OPEN_STAGES.index(target)
    if there < here - 1:
        raise StageMoveRefused(
            f"{current} may go back one stage only (to {OPEN_STAGES[here - 1]}), not to {target}"
        )
