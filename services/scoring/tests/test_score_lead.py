"""The pure scoring function: fit, decay, caps, negative points, grades, explanation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow_scoring.rules import EngagementLevels, FitGrades, ScoringRules, default_rules
from leadflow_scoring.scoring import (
    EngagementFact,
    FitProfile,
    ScoreResult,
    engagement_level_for,
    fit_grade_for,
    score_lead,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DEFAULT = default_rules()


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def engagements(type_: str, *ages_in_days: float) -> list[EngagementFact]:
    return [EngagementFact(type=type_, occurred_at=ago(days)) for days in ages_in_days]


def rules(
    *,
    fit: list[dict[str, Any]] | None = None,
    types: dict[str, dict[str, int]] | None = None,
    half_life_days: float = 30,
    mql_threshold: int = 50,
) -> ScoringRules:
    return ScoringRules.model_validate(
        {
            "fit": fit or [],
            "engagement": {"types": types or {}, "half_life_days": half_life_days},
            "mql_threshold": mql_threshold,
            "grades": {
                "bands": [
                    {"grade": "A", "min_score": 80},
                    {"grade": "B", "min_score": 60},
                    {"grade": "C", "min_score": 40},
                ],
                "otherwise": "D",
            },
        }
    )


def explained(result: ScoreResult) -> dict[str, int]:
    return {f.factor: f.points for f in result.explanation}


def assert_explanation_sums(result: ScoreResult) -> None:
    assert sum(f.points for f in result.explanation) == result.score
    assert result.score == result.fit + result.engagement


# --- default rules ------------------------------------------------------------------------

IDEAL = FitProfile(employees=200, title="VP of Sales", country="DE")


def test_senior_contact_at_200_employee_company_in_target_country_is_mql_on_capture() -> None:
    result = score_lead(IDEAL, [], DEFAULT, NOW)
    assert result.meets_threshold
    assert (result.fit, result.engagement, result.score) == (50, 0, 50)
    assert explained(result) == {
        "company size 200+": 20,
        "senior title": 20,
        "target country": 10,
    }


@pytest.mark.parametrize(
    "title", ["Director of IT", "head of growth", "Chief Revenue Officer", "CTO", "SVP Sales"]
)
def test_senior_titles_match_case_insensitive_substrings(title: str) -> None:
    result = score_lead(FitProfile(title=title), [], DEFAULT, NOW)
    assert explained(result) == {"senior title": 20}


def test_non_senior_title_gets_no_title_points() -> None:
    assert score_lead(FitProfile(title="Software Engineer"), [], DEFAULT, NOW).score == 0


@pytest.mark.parametrize("change", ["employees", "title", "country"])
def test_missing_any_ideal_trait_keeps_lead_below_threshold(change: str) -> None:
    traits: dict[str, Any] = {"employees": 200, "title": "VP Sales", "country": "DE"}
    traits[change] = {"employees": 199, "title": "Analyst", "country": "BR"}[change]
    result = score_lead(FitProfile(**traits), [], DEFAULT, NOW)
    assert result.score < DEFAULT.mql_threshold
    assert not result.meets_threshold


def test_large_company_scores_both_size_factors_and_all_fit_factors_add_up() -> None:
    profile = FitProfile(employees=5000, title="CEO", country="US", company="Acme", industry="SaaS")
    result = score_lead(profile, [], DEFAULT, NOW)
    assert explained(result) == {
        "company size 200+": 20,
        "company size 1000+": 10,
        "senior title": 20,
        "target country": 10,
        "has company": 5,
        "target industry": 10,
    }
    assert result.score == 75
    assert result.grade == "B"
    assert_explanation_sums(result)


def test_default_engagement_points_per_type() -> None:
    expected = {
        "demo_request": 40,
        "trial_signup": 30,
        "pricing_page_view": 15,
        "webinar_attended": 10,
        "content_download": 8,
        "form_submit": 5,
        "email_click": 3,
        "page_view": 1,
        "email_open": 1,
    }
    for type_, points in expected.items():
        result = score_lead(FitProfile(), engagements(type_, 0), DEFAULT, NOW)
        assert result.engagement == points, type_
    assert DEFAULT.engagement.half_life_days == 30


def test_demo_request_does_not_make_a_d_fit_contact_an_mql() -> None:
    # A hand-raiser makes an MQL at once unless the fit grade is D: an unknown contact
    # (no fit points) is D, so its demo request still waits for points.
    result = score_lead(FitProfile(), engagements("demo_request", 0), DEFAULT, NOW)
    assert result.score == 40 and result.fit_grade == "D" and result.hand_raised
    assert not result.meets_threshold


MODEST_FIT = FitProfile(country="US", company="Acme")  # 15 fit points: grade C


@pytest.mark.parametrize("type_", ["demo_request", "contact_sales", "trial_signup"])
def test_hand_raiser_from_a_modest_fit_is_an_mql_below_the_threshold(type_: str) -> None:
    r = DEFAULT.model_copy(update={"mql_threshold": 200})
    result = score_lead(MODEST_FIT, engagements(type_, 0), r, NOW)
    assert result.fit_grade == "C" and result.score < 200
    assert result.hand_raised and result.meets_threshold


def test_trial_signup_from_a_c_fit_lead_is_an_mql_under_the_default_rules() -> None:
    result = score_lead(MODEST_FIT, engagements("trial_signup", 0), DEFAULT, NOW)
    assert result.score == 45 < DEFAULT.mql_threshold
    assert result.meets_threshold


def test_other_engagement_is_no_hand_raise() -> None:
    result = score_lead(MODEST_FIT, engagements("pricing_page_view", 0), DEFAULT, NOW)
    assert not result.hand_raised and not result.meets_threshold


def test_only_hand_raisers_after_the_last_recycle_count() -> None:
    events = engagements("demo_request", 10)
    r = DEFAULT.model_copy(update={"mql_threshold": 200})
    assert score_lead(MODEST_FIT, events, r, NOW, hand_raised_after=ago(20)).meets_threshold
    later = score_lead(MODEST_FIT, events, r, NOW, hand_raised_after=ago(5))
    assert not later.hand_raised and not later.meets_threshold


def test_hand_raiser_types_come_from_the_rules() -> None:
    r = DEFAULT.model_copy(update={"mql_threshold": 200, "hand_raisers": ["webinar_attended"]})
    assert score_lead(MODEST_FIT, engagements("webinar_attended", 0), r, NOW).meets_threshold
    assert not score_lead(MODEST_FIT, engagements("demo_request", 0), r, NOW).meets_threshold


# --- fit operators ------------------------------------------------------------------------


def test_exists_ignores_empty_and_missing_values() -> None:
    r = rules(fit=[{"factor": "has company", "field": "company", "op": "exists", "points": 5}])
    assert score_lead(FitProfile(company="Acme"), [], r, NOW).score == 5
    assert score_lead(FitProfile(company=""), [], r, NOW).score == 0
    assert score_lead(FitProfile(company=None), [], r, NOW).score == 0


def test_eq_and_in_compare_text_ignoring_case() -> None:
    r = rules(
        fit=[
            {"factor": "fintech", "field": "industry", "op": "eq", "value": "FinTech", "points": 7},
            {"factor": "west", "field": "state", "op": "in", "value": ["ca", "wa"], "points": 3},
        ]
    )
    result = score_lead(FitProfile(industry="fintech", state="CA"), [], r, NOW)
    assert explained(result) == {"fintech": 7, "west": 3}


def test_gte_and_lte_bound_numbers_inclusively_and_skip_missing() -> None:
    r = rules(
        fit=[
            {"factor": "mid", "field": "employees", "op": "gte", "value": 50, "points": 5},
            {"factor": "small", "field": "employees", "op": "lte", "value": 50, "points": 2},
        ]
    )
    assert explained(score_lead(FitProfile(employees=50), [], r, NOW)) == {"mid": 5, "small": 2}
    assert explained(score_lead(FitProfile(employees=51), [], r, NOW)) == {"mid": 5}
    assert score_lead(FitProfile(employees=None), [], r, NOW).score == 0


def test_utm_and_custom_fields_can_be_scored() -> None:
    r = rules(
        fit=[
            {"factor": "paid", "field": "utm.source", "op": "eq", "value": "google", "points": 4},
            {"factor": "seats", "field": "custom.seats", "op": "gte", "value": 10, "points": 6},
        ]
    )
    profile = FitProfile(utm={"source": "Google"}, custom={"seats": 25})
    assert explained(score_lead(profile, [], r, NOW)) == {"paid": 4, "seats": 6}
    assert score_lead(FitProfile(custom={"seats": "lots"}), [], r, NOW).score == 0


def test_booleans_equal_only_booleans() -> None:
    r = rules(
        fit=[
            {
                "factor": "consent",
                "field": "consent_marketing",
                "op": "eq",
                "value": True,
                "points": 3,
            },
            {"factor": "flag", "field": "custom.flag", "op": "eq", "value": 1, "points": 9},
        ]
    )
    result = score_lead(FitProfile(consent_marketing=True, custom={"flag": True}), [], r, NOW)
    assert explained(result) == {"consent": 3}


def test_negative_fit_points_lower_the_score_and_are_explained() -> None:
    r = rules(
        fit=[
            {"factor": "has company", "field": "company", "op": "exists", "points": 10},
            {
                "factor": "competitor",
                "field": "company",
                "op": "contains_any",
                "value": ["rivalcorp"],
                "points": -30,
            },
        ]
    )
    result = score_lead(FitProfile(company="RivalCorp Inc"), [], r, NOW)
    assert result.fit == -20
    assert explained(result) == {"has company": 10, "competitor": -30}
    assert_explanation_sums(result)


def test_zero_point_rules_are_not_listed() -> None:
    r = rules(fit=[{"factor": "noted", "field": "company", "op": "exists", "points": 0}])
    assert score_lead(FitProfile(company="Acme"), [], r, NOW).explanation == ()


# --- engagement: decay and caps -----------------------------------------------------------


def test_engagement_points_halve_every_half_life() -> None:
    r = rules(types={"demo_request": {"points": 40}}, half_life_days=30)
    assert score_lead(FitProfile(), engagements("demo_request", 0), r, NOW).engagement == 40
    assert score_lead(FitProfile(), engagements("demo_request", 30), r, NOW).engagement == 20
    assert score_lead(FitProfile(), engagements("demo_request", 60), r, NOW).engagement == 10
    assert score_lead(FitProfile(), engagements("demo_request", 15), r, NOW).engagement == 28


def test_engagement_in_the_future_counts_in_full() -> None:
    r = rules(types={"demo_request": {"points": 40}})
    assert score_lead(FitProfile(), engagements("demo_request", -2), r, NOW).engagement == 40


def test_fully_decayed_engagement_leaves_no_explanation_line() -> None:
    r = rules(types={"page_view": {"points": 1}}, half_life_days=30)
    result = score_lead(FitProfile(), engagements("page_view", 365), r, NOW)
    assert result.engagement == 0 and result.explanation == ()


def test_one_explanation_line_per_engagement_type_with_its_count() -> None:
    r = rules(types={"pricing_page_view": {"points": 15}, "email_open": {"points": 1}})
    events = [*engagements("pricing_page_view", 0, 0), *engagements("email_open", 0, 0, 0)]
    result = score_lead(FitProfile(), events, r, NOW)
    assert explained(result) == {
        "engagement: pricing_page_view x2": 30,
        "engagement: email_open x3": 3,
    }
    assert_explanation_sums(result)


def test_cap_bounds_a_types_total() -> None:
    r = rules(types={"page_view": {"points": 1, "cap": 10}})
    result = score_lead(FitProfile(), engagements("page_view", *[0] * 50), r, NOW)
    assert explained(result) == {"engagement: page_view x50": 10}


def test_cap_applies_after_decay() -> None:
    r = rules(types={"email_click": {"points": 10, "cap": 15}}, half_life_days=30)
    # Two clicks one half-life ago are worth 10 together: under the cap.
    result = score_lead(FitProfile(), engagements("email_click", 30, 30), r, NOW)
    assert result.engagement == 10


def test_negative_engagement_points_are_capped_symmetrically() -> None:
    r = rules(types={"unsubscribe": {"points": -20, "cap": 25}})
    result = score_lead(FitProfile(), engagements("unsubscribe", 0, 0), r, NOW)
    assert explained(result) == {"engagement: unsubscribe x2": -25}


def test_half_points_round_away_from_zero() -> None:
    r = rules(types={"plus": {"points": 3}, "minus": {"points": -3}}, half_life_days=10)
    events = [*engagements("plus", 10), *engagements("minus", 10)]
    assert explained(score_lead(FitProfile(), events, r, NOW)) == {
        "engagement: plus x1": 2,
        "engagement: minus x1": -2,
    }


def test_engagement_types_without_rules_are_ignored() -> None:
    r = rules(types={"demo_request": {"points": 40}})
    result = score_lead(FitProfile(), engagements("podcast_listen", 0), r, NOW)
    assert result.score == 0 and result.explanation == ()


def test_explanation_sums_to_score_with_fit_and_decayed_engagement() -> None:
    profile = FitProfile(employees=1500, title="Head of IT", country="NL", company="Acme")
    events = [
        *engagements("pricing_page_view", 1, 12, 45),
        *engagements("page_view", *[3] * 30),
        *engagements("webinar_attended", 70),
    ]
    result = score_lead(profile, events, DEFAULT, NOW)
    assert_explanation_sums(result)
    assert result.engagement > 0 and result.fit == 65


# --- threshold and grades -----------------------------------------------------------------


@pytest.mark.parametrize(("points", "meets"), [(49, False), (50, True), (51, True)])
def test_threshold_is_reached_at_exactly_mql_threshold(points: int, meets: bool) -> None:
    r = rules(
        fit=[{"factor": "x", "field": "company", "op": "exists", "points": points}],
        mql_threshold=50,
    )
    assert score_lead(FitProfile(company="Acme"), [], r, NOW).meets_threshold is meets


@pytest.mark.parametrize(
    ("points", "grade"),
    [(100, "A"), (80, "A"), (79, "B"), (60, "B"), (59, "C"), (40, "C"), (39, "D"), (-50, "D")],
)
def test_grade_is_the_first_band_the_score_reaches(points: int, grade: str) -> None:
    r = rules(fit=[{"factor": "x", "field": "company", "op": "exists", "points": points}])
    assert score_lead(FitProfile(company="Acme"), [], r, NOW).grade == grade


@pytest.mark.parametrize(
    ("fit", "grade"), [(75, "A"), (50, "A"), (49, "B"), (30, "B"), (15, "C"), (14, "D"), (0, "D")]
)
def test_fit_grade_default_cut_offs(fit: int, grade: str) -> None:
    assert fit_grade_for(fit, DEFAULT.fit_grades) == grade


@pytest.mark.parametrize(
    ("points", "level"), [(-5, 1), (0, 1), (9, 1), (10, 2), (29, 2), (30, 3), (59, 3), (60, 4)]
)
def test_engagement_level_default_cut_offs(points: int, level: int) -> None:
    assert engagement_level_for(points, DEFAULT.engagement_levels) == level


def test_fit_grade_and_engagement_level_follow_the_rules() -> None:
    r = rules(fit=[{"factor": "has company", "field": "company", "op": "exists", "points": 5}])
    r = r.model_copy(
        update={
            "fit_grades": FitGrades(a=5, b=3, c=1),
            "engagement_levels": EngagementLevels(level_2=1, level_3=2, level_4=3),
        }
    )
    result = score_lead(FitProfile(company="Acme"), [], r, NOW)
    assert (result.fit_grade, result.engagement_level) == ("A", 1)


def _matrix_rules(matrix: dict[str, int | None] | None) -> ScoringRules:
    document = {
        **rules(
            fit=[
                {"factor": "big", "field": "employees", "op": "gte", "value": 1000, "points": 55},
                {"factor": "mid", "field": "employees", "op": "gte", "value": 100, "points": 20},
            ],
            types={"page_view": {"points": 1}, "pricing_page_view": {"points": 15}},
        ).model_dump(mode="json"),
        "mql_matrix": matrix,
    }
    return ScoringRules.model_validate(document)


@pytest.mark.parametrize(
    ("employees", "views", "pricing", "mql"),
    [
        (5000, 0, 0, True),  # A fit (75 points), engagement level 1: "A with any engagement"
        (200, 0, 2, False),  # C fit (20), level 3 (30 points): C needs level 4
        (200, 0, 4, True),  # C fit, level 4 (60 points)
        (10, 0, 10, False),  # D fit: never by the matrix, whatever the engagement
    ],
)
def test_the_mql_matrix_decides_instead_of_the_threshold(
    employees: int, views: int, pricing: int, mql: bool
) -> None:
    matrix = _matrix_rules({"A": 1, "B": 3, "C": 4, "D": None})
    profile = FitProfile(employees=employees)
    facts = [
        *engagements("page_view", *[0] * views),
        *engagements("pricing_page_view", *[0] * pricing),
    ]
    result = score_lead(profile, facts, matrix, NOW)
    assert result.meets_threshold is mql
    # Without the matrix the same leads follow the score threshold (50).
    plain = score_lead(profile, facts, _matrix_rules(None), NOW)
    assert plain.meets_threshold is (plain.score >= 50)


def test_a_grade_left_out_of_the_matrix_never_qualifies_by_it() -> None:
    only_a = _matrix_rules({"A": 2})
    result = score_lead(FitProfile(employees=5000), [], only_a, NOW)  # A, level 1
    assert result.fit_grade == "A" and result.engagement_level == 1
    assert not result.meets_threshold
    assert score_lead(
        FitProfile(employees=5000), engagements("pricing_page_view", 0), only_a, NOW
    ).meets_threshold


@pytest.mark.parametrize("bad", [{"A": 0}, {"A": 5}, {"E": 1}, {"a": 1}, {"A": "1"}])
def test_the_mql_matrix_is_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="mql_matrix"):
        _matrix_rules(bad)


def test_unsubscribe_and_bounce_subtract_under_the_default_rules() -> None:
    profile = FitProfile(employees=500, title="VP Sales", country="US", company="Acme")
    base = score_lead(profile, engagements("pricing_page_view", 0), DEFAULT, NOW)
    gone = score_lead(
        profile,
        [*engagements("pricing_page_view", 0), *engagements("unsubscribe", 0)],
        DEFAULT,
        NOW,
    )
    bounced = score_lead(
        profile,
        [*engagements("pricing_page_view", 0), *engagements("email_bounce", 0, 0, 0)],
        DEFAULT,
        NOW,
    )
    assert gone.score == base.score - 20
    assert explained(gone)["engagement: unsubscribe x1"] == -20
    assert bounced.score == base.score - 20  # -10 each, capped at -20
    assert_explanation_sums(gone)
    assert_explanation_sums(bounced)
