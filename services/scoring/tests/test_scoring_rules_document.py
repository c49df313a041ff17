"""The rules document's validation: strict, naming the bad field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from leadflow_scoring.rules import ScoringRules, default_rules

VALID: dict[str, Any] = default_rules().model_dump(mode="json")


def with_rule(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    rule = {"factor": "f", "field": "employees", "op": "gte", "value": 10, "points": 5}
    rule.update(changes)
    doc["fit"] = [{k: v for k, v in rule.items() if v is not ...}]
    return doc


def error_locations(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        ScoringRules.model_validate(doc)
    return [".".join(str(p) for p in err["loc"]) for err in caught.value.errors()]


def test_default_rules_are_valid_and_round_trip() -> None:
    rules = default_rules()
    assert rules.mql_threshold == 50
    assert ScoringRules.model_validate(rules.model_dump(mode="json")) == rules


def test_unknown_field_is_rejected_by_name() -> None:
    assert error_locations(with_rule(field="salary")) == ["fit.0.field"]


def test_unknown_op_is_rejected() -> None:
    assert error_locations(with_rule(op="regex")) == ["fit.0.op"]


@pytest.mark.parametrize("points", [101, -101])
def test_points_out_of_range_are_rejected(points: int) -> None:
    assert error_locations(with_rule(points=points)) == ["fit.0.points"]


def test_points_given_as_text_are_not_coerced() -> None:
    assert error_locations(with_rule(points="5")) == ["fit.0.points"]


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "title", "op": "gte", "value": 3},
        {"field": "employees", "op": "contains_any", "value": ["1"]},
        {"field": "consent_marketing", "op": "exists", "value": ...},
        {"field": "company", "op": "exists", "value": "Acme"},
        {"field": "country", "op": "in", "value": []},
        {"field": "country", "op": "in", "value": "US"},
        {"field": "employees", "op": "in", "value": ["200"]},
        {"field": "employees", "op": "eq", "value": True},
        {"field": "title", "op": "eq", "value": ...},
        {"field": "custom.plan", "op": "gte", "value": "gold"},
    ],
)
def test_value_must_suit_the_op_and_field(rule: dict[str, Any]) -> None:
    assert error_locations(with_rule(**rule)) == ["fit.0"]


@pytest.mark.parametrize("field", ["utm.source", "custom.plan_tier", "consent_marketing"])
def test_profile_utm_and_custom_fields_are_accepted(field: str) -> None:
    value: object = True if field == "consent_marketing" else "gold"
    ScoringRules.model_validate(with_rule(field=field, op="eq", value=value))


def test_unknown_keys_are_rejected() -> None:
    doc = copy.deepcopy(VALID)
    doc["mql_treshold"] = 10
    assert error_locations(doc) == ["mql_treshold"]


def test_engagement_type_names_caps_and_half_life_are_checked() -> None:
    doc = copy.deepcopy(VALID)
    doc["engagement"]["types"]["Bad Type"] = {"points": 1}
    doc["engagement"]["types"]["page_view"] = {"points": 1, "cap": 0}
    doc["engagement"]["half_life_days"] = 0
    assert sorted(error_locations(doc)) == [
        "engagement.half_life_days",
        "engagement.types.Bad Type.[key]",
        "engagement.types.page_view.cap",
    ]


def test_grade_bands_must_decrease_and_be_distinct() -> None:
    doc = copy.deepcopy(VALID)
    doc["grades"]["bands"] = [{"grade": "A", "min_score": 40}, {"grade": "B", "min_score": 60}]
    assert error_locations(doc) == ["grades"]
    doc["grades"]["bands"] = [{"grade": "A", "min_score": 60}, {"grade": "D", "min_score": 40}]
    assert error_locations(doc) == ["grades"]


def test_mql_threshold_must_be_positive() -> None:
    doc = copy.deepcopy(VALID)
    doc["mql_threshold"] = 0
    assert error_locations(doc) == ["mql_threshold"]


def test_documents_without_the_v2_keys_get_their_defaults() -> None:
    doc = {k: v for k, v in VALID.items() if k not in {"hand_raisers", "fit_grades"}}
    rules = ScoringRules.model_validate(doc)
    assert rules.hand_raisers == ["demo_request", "contact_sales", "trial_signup"]
    assert (rules.fit_grades.a, rules.fit_grades.b, rules.fit_grades.c) == (50, 30, 15)


def test_overlapping_fit_grades_and_levels_are_rejected_by_name() -> None:
    doc = copy.deepcopy(VALID)
    doc["fit_grades"] = {"a": 30, "b": 30, "c": 10}
    assert error_locations(doc) == ["fit_grades"]
    doc = copy.deepcopy(VALID)
    doc["engagement_levels"] = {"level_2": 40, "level_3": 30, "level_4": 60}
    assert error_locations(doc) == ["engagement_levels"]


def test_hand_raiser_names_are_engagement_type_names() -> None:
    doc = copy.deepcopy(VALID)
    doc["hand_raisers"] = ["Demo Request"]
    assert error_locations(doc) == ["hand_raisers.0"]
