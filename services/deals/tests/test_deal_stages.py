from __future__ import annotations

import pytest

from leadflow_deals.stages import PROBABILITY, StageMoveRefused, check_stage_move
from leadflow_shared.events.schemas import StageId


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("discovery", "demo"),
        ("discovery", "negotiation"),
        ("demo", "proposal"),
        ("proposal", "demo"),
        ("negotiation", "proposal"),
        ("demo", "discovery"),
    ],
)
def test_forward_to_any_later_open_stage_or_back_one_is_allowed(
    current: StageId, target: StageId
) -> None:
    check_stage_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [("proposal", "discovery"), ("negotiation", "demo"), ("negotiation", "discovery")],
)
def test_going_back_more_than_one_stage_is_refused(current: StageId, target: StageId) -> None:
    with pytest.raises(StageMoveRefused, match="back one stage only"):
        check_stage_move(current, target)


@pytest.mark.parametrize("target", ["closed_won", "closed_lost"])
def test_closed_stages_are_not_reached_by_a_stage_move(target: StageId) -> None:
    with pytest.raises(StageMoveRefused, match="close"):
        check_stage_move("negotiation", target)


@pytest.mark.parametrize("current", ["closed_won", "closed_lost"])
def test_closed_deals_never_move(current: StageId) -> None:
    with pytest.raises(StageMoveRefused, match="closed deals cannot change"):
        check_stage_move(current, "negotiation")


def test_probabilities_rise_along_the_pipeline() -> None:
    assert PROBABILITY == {
        "discovery": 10,
        "demo": 25,
        "proposal": 50,
        "negotiation": 75,
        "closed_won": 100,
        "closed_lost": 0,
    }
