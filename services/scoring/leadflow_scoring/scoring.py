"""The score of a lead: a pure function of its profile, its engagements, the rules and now.

Score = fit + engagement. Fit: the points of every fit rule the profile matches. Engagement:
per engagement type, the type's points for each engagement, halved every ``half_life_days``
of age, summed, rounded and capped. The explanation lists every factor that gave points
and always sums to the score.

The lead meets the MQL rule when its score reaches the threshold (or, when the rules have
an ``mql_matrix``, when its engagement level reaches the matrix's level for its fit grade),
or when it raised its hand (an engagement of a hand-raiser type, since its last recycle)
and its fit grade is not D. ``fit_grade`` (A-D) grades the fit points,
``engagement_level`` (1-4) the engagement points, by the cut-offs of the rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from leadflow_scoring.rules import (
    EngagementLevels,
    EngagementRules,
    FitGrades,
    FitRule,
    Grades,
    ScoringRules,
)
from leadflow_shared.events import ScoreFactor

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class FitProfile:
    """The profile fields fit rules may test (nothing else of the lead is kept here)."""

    company: str | None = None
    title: str | None = None
    country: str | None = None
    state: str | None = None
    employees: int | None = None
    industry: str | None = None
    website: str | None = None
    source: str | None = None
    campaign: str | None = None
    consent_marketing: bool = False
    utm: Mapping[str, str] = field(default_factory=dict)
    custom: Mapping[str, Any] = field(default_factory=dict)
    # Domain signals derived by lead-intake at capture (contract v2), for fit rules:
    # registrable domain, free-mail / disposable / role address, seniority and function
    # from the title, and how the lead matched a known account ("domain", "name" or None).
    domain: str | None = None
    free_mail: bool = False
    disposable: bool = False
    role_account: bool = False
    seniority: str | None = None
    function: str | None = None
    account_match: str | None = None

    def value_of(self, name: str) -> object:
        """The value of a rule's field name (``utm.source``, ``custom.plan``, ``title``)."""
        group, _, key = name.partition(".")
        if key and group == "utm":
            return self.utm.get(key)
        if key and group == "custom":
            return self.custom.get(key)
        return getattr(self, name, None)


# The profile fields scoring keeps, in the read model and in its events alike.
PROFILE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FitProfile))
_FLAGS = ("free_mail", "disposable", "role_account")


def profile_of(data: Any) -> FitProfile:
    """The fit profile a ``lead.captured`` / ``merged`` / ``updated`` event carries (older
    events without the domain signals give their defaults)."""
    values: dict[str, Any] = {
        name: getattr(data, name, None)
        for name in PROFILE_FIELDS
        if name not in _FLAGS and name != "account_match"
    }
    values.update({name: bool(getattr(data, name, None)) for name in _FLAGS})
    account = getattr(data, "account", None)
    values["account_match"] = account.match if account is not None else None
    values["consent_marketing"] = bool(values.get("consent_marketing"))
    values["utm"] = values.get("utm") or {}
    values["custom"] = values.get("custom") or {}
    return FitProfile(**values)


@dataclass(frozen=True)
class EngagementFact:
    type: str
    occurred_at: datetime


@dataclass(frozen=True)
class ScoreResult:
    score: int
    fit: int
    engagement: int
    grade: str
    meets_threshold: bool  # meets the MQL rule: the threshold, or a hand-raise
    explanation: tuple[ScoreFactor, ...]
    fit_grade: str = "D"
    engagement_level: int = 1
    hand_raised: bool = False


def score_lead(
    profile: FitProfile,
    engagements: Sequence[EngagementFact],
    rules: ScoringRules,
    now: datetime,
    *,
    hand_raised_after: datetime | None = None,
) -> ScoreResult:
    """Score one lead under ``rules`` as of ``now`` (engagement points decay with age).

    Only hand-raisers that occurred after ``hand_raised_after`` (the lead's last recycle)
    count for the MQL rule."""
    fit_factors = [
        ScoreFactor(factor=rule.factor, points=rule.points)
        for rule in rules.fit
        if rule.points != 0 and fit_rule_matches(rule, profile)
    ]
    engagement_factors = engagement_points(engagements, rules.engagement, now)
    fit = sum(f.points for f in fit_factors)
    engagement = sum(f.points for f in engagement_factors)
    score = fit + engagement
    fit_grade = fit_grade_for(fit, rules.fit_grades)
    level = engagement_level_for(engagement, rules.engagement_levels)
    hand_raisers = set(rules.hand_raisers)
    hand_raised = any(
        e.type in hand_raisers and (hand_raised_after is None or e.occurred_at > hand_raised_after)
        for e in engagements
    )
    return ScoreResult(
        score=score,
        fit=fit,
        engagement=engagement,
        grade=grade_for(score, rules.grades),
        meets_threshold=meets_mql_rule(rules, score, fit_grade, level)
        or (hand_raised and fit_grade != "D"),
        explanation=(*fit_factors, *engagement_factors),
        fit_grade=fit_grade,
        engagement_level=level,
        hand_raised=hand_raised,
    )


def meets_mql_rule(rules: ScoringRules, score: int, fit_grade: str, level: int) -> bool:
    """The rules' MQL rule without hand-raisers: the matrix of fit grade and engagement
    level when the rules have one (``{"A": 1, "B": 3}``: A-fit with any engagement, B-fit
    from level 3, C and D never), else the score threshold."""
    if rules.mql_matrix is None:
        return score >= rules.mql_threshold
    lowest = rules.mql_matrix.get(fit_grade)  # type: ignore[call-overload]
    return lowest is not None and level >= lowest


def fit_grade_for(fit: int, grades: FitGrades) -> str:
    """A, B or C when the fit points reach that bound, else D."""
    if fit >= grades.a:
        return "A"
    if fit >= grades.b:
        return "B"
    return "C" if fit >= grades.c else "D"


def engagement_level_for(engagement: int, levels: EngagementLevels) -> int:
    """4, 3 or 2 when the engagement points reach that level's bound, else 1."""
    if engagement >= levels.level_4:
        return 4
    if engagement >= levels.level_3:
        return 3
    return 2 if engagement >= levels.level_2 else 1


def fit_rule_matches(rule: FitRule, profile: FitProfile) -> bool:
    """Whether the profile satisfies one rule; text comparisons ignore case."""
    actual = profile.value_of(rule.field)
    if actual is None or actual == "":
        return False
    if rule.op == "exists":
        return True
    if rule.op == "eq":
        return _same(actual, rule.value)
    if rule.op == "in":
        return isinstance(rule.value, list) and any(_same(actual, v) for v in rule.value)
    if rule.op == "contains_any":
        if not isinstance(actual, str) or not isinstance(rule.value, list):
            return False
        text = actual.casefold()
        return any(isinstance(v, str) and v.casefold() in text for v in rule.value)
    if not _is_number(actual) or not _is_number(rule.value):
        return False
    assert isinstance(actual, int | float) and isinstance(rule.value, int | float)
    return actual >= rule.value if rule.op == "gte" else actual <= rule.value


def engagement_points(
    engagements: Sequence[EngagementFact], rules: EngagementRules, now: datetime
) -> list[ScoreFactor]:
    """One factor per engagement type that gave points, in the order of the rules."""
    counts: dict[str, int] = {}
    decayed: dict[str, float] = {}
    for engagement in engagements:
        rule = rules.types.get(engagement.type)
        if rule is None:
            continue
        age_days = max(0.0, (now - engagement.occurred_at).total_seconds() / SECONDS_PER_DAY)
        weight = 0.5 ** (age_days / rules.half_life_days)
        counts[engagement.type] = counts.get(engagement.type, 0) + 1
        decayed[engagement.type] = decayed.get(engagement.type, 0.0) + rule.points * weight
    factors = []
    for type_name, rule in rules.types.items():
        if type_name not in counts:
            continue
        points = _round_half_away_from_zero(decayed[type_name])
        if rule.cap is not None:
            # The cap bounds the type's contribution either way (negative types too).
            points = max(-rule.cap, min(rule.cap, points))
        if points != 0:
            label = f"engagement: {type_name} x{counts[type_name]}"
            factors.append(ScoreFactor(factor=label, points=points))
    return factors


def grade_for(score: int, grades: Grades) -> str:
    for band in grades.bands:
        if score >= band.min_score:
            return band.grade
    return grades.otherwise


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(actual: object, wanted: object) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str):
        return actual.strip().casefold() == wanted.strip().casefold()
    if isinstance(actual, bool) or isinstance(wanted, bool):
        # True == 1 in Python; a boolean only ever equals a boolean here.
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual is wanted
    return _is_number(actual) and _is_number(wanted) and actual == wanted


def _round_half_away_from_zero(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))
