"""The scoring rules document: fit rules, engagement points with decay, MQL threshold, grades.

Validated strictly (no coercion, no unknown keys) so a manager's typo is a 422 naming the
field, never a rule that silently matches nothing.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadflow_shared.validation import ShortText

FieldKind = Literal["text", "number", "bool", "any"]

# Lead profile fields a fit rule may test, with the kind of value each holds.
PROFILE_FIELD_KINDS: dict[str, FieldKind] = {
    "company": "text",
    "title": "text",
    "country": "text",
    "state": "text",
    "employees": "number",
    "industry": "text",
    "website": "text",
    "source": "text",
    "campaign": "text",
    "consent_marketing": "bool",
    "utm.source": "text",
    "utm.medium": "text",
    "utm.campaign": "text",
    "utm.term": "text",
    "utm.content": "text",
    # Domain signals from capture (contract v2).
    "domain": "text",
    "free_mail": "bool",
    "disposable": "bool",
    "role_account": "bool",
    "seniority": "text",
    "function": "text",
    "account_match": "text",
}
# ``custom.<key>`` reaches the lead's custom fields, whose values may be of any kind.
CUSTOM_FIELD = re.compile(r"^custom\.[A-Za-z0-9_\-]{1,100}$")

Op = Literal["eq", "in", "gte", "lte", "contains_any", "exists"]
OPS_BY_KIND: dict[FieldKind, frozenset[str]] = {
    "text": frozenset({"eq", "in", "contains_any", "exists"}),
    "number": frozenset({"eq", "in", "gte", "lte", "exists"}),
    "bool": frozenset({"eq"}),
    "any": frozenset({"eq", "in", "gte", "lte", "contains_any", "exists"}),
}

Points = Annotated[int, Field(ge=-100, le=100)]
Scalar = Annotated[str, Field(min_length=1, max_length=200)] | int | float | bool
EngagementTypeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
GradeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9+\-]{1,10}$")]
ScoreBound = Annotated[int, Field(ge=-10_000, le=10_000)]
FitGradeName = Literal["A", "B", "C", "D"]
EngagementLevel = Annotated[int, Field(ge=1, le=4)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def field_kind(name: str) -> FieldKind | None:
    """The kind of a fit rule's field, or None when no such field exists."""
    if name in PROFILE_FIELD_KINDS:
        return PROFILE_FIELD_KINDS[name]
    return "any" if CUSTOM_FIELD.match(name) else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fits_kind(value: object, kind: FieldKind) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "number":
        return _is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    return True


class FitRule(_Strict):
    """One test of the lead's profile; ``points`` are given when it matches."""

    factor: ShortText = Field(min_length=1, description="label shown in the explanation")
    field: str = Field(max_length=120)
    op: Op
    value: Scalar | list[Scalar] | None = None
    points: Points

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        if field_kind(name) is None:
            known = ", ".join(PROFILE_FIELD_KINDS)
            raise ValueError(f"unknown field {name!r}; use one of {known} or custom.<key>")
        return name

    @model_validator(mode="after")
    def _value_fits_op(self) -> FitRule:
        kind = field_kind(self.field)
        assert kind is not None  # the field validator ran first
        if self.op not in OPS_BY_KIND[kind]:
            allowed = ", ".join(sorted(OPS_BY_KIND[kind]))
            raise ValueError(f"op {self.op!r} does not apply to {self.field} ({allowed} do)")
        value = self.value
        if self.op == "exists":
            if value is not None:
                raise ValueError("op 'exists' takes no value")
        elif self.op in {"in", "contains_any"}:
            if not isinstance(value, list) or not 1 <= len(value) <= 100:
                raise ValueError(f"op {self.op!r} needs a list of 1 to 100 values")
            wanted: FieldKind = "text" if self.op == "contains_any" else kind
            if not all(_fits_kind(item, wanted) for item in value):
                raise ValueError(f"every value of {self.op!r} on {self.field} must be {wanted}")
        elif self.op in {"gte", "lte"}:
            if not _is_number(value):
                raise ValueError(f"op {self.op!r} needs a number value")
        elif value is None or isinstance(value, list) or not _fits_kind(value, kind):
            raise ValueError(f"op 'eq' on {self.field} needs a single {kind} value")
        return self


class EngagementRule(_Strict):
    """Points per engagement of one type, optionally capped (after decay) per lead."""

    points: Points
    cap: Annotated[int, Field(ge=1, le=1000)] | None = None


class EngagementRules(_Strict):
    types: dict[EngagementTypeName, EngagementRule] = Field(max_length=100)
    half_life_days: float = Field(gt=0, le=3650, description="points halve every this many days")


class GradeBand(_Strict):
    grade: GradeName
    min_score: ScoreBound


class Grades(_Strict):
    """Bands from best to worst: the first whose ``min_score`` the score reaches wins."""

    bands: list[GradeBand] = Field(min_length=1, max_length=20)
    otherwise: GradeName

    @model_validator(mode="after")
    def _ordered_and_distinct(self) -> Grades:
        minimums = [band.min_score for band in self.bands]
        if any(a <= b for a, b in pairwise(minimums)):
            raise ValueError("bands must be ordered by strictly decreasing min_score")
        names = [band.grade for band in self.bands] + [self.otherwise]
        if len(set(names)) != len(names):
            raise ValueError("grade names must be distinct (including otherwise)")
        return self


class FitGrades(_Strict):
    """Fit points that grade a lead's fit A, B or C (at least that many); below ``c`` it is D."""

    a: ScoreBound = 50
    b: ScoreBound = 30
    c: ScoreBound = 15

    @model_validator(mode="after")
    def _decreasing(self) -> FitGrades:
        if not self.a > self.b > self.c:
            raise ValueError("fit grade bounds must decrease strictly: a > b > c")
        return self


class EngagementLevels(_Strict):
    """Engagement points (after decay) that make level 2, 3 or 4 (at least that many);
    below ``level_2`` it is level 1."""

    level_2: ScoreBound = 10
    level_3: ScoreBound = 30
    level_4: ScoreBound = 60

    @model_validator(mode="after")
    def _increasing(self) -> EngagementLevels:
        if not self.level_2 < self.level_3 < self.level_4:
            raise ValueError("engagement levels must increase strictly: level_2 < 3 < 4")
        return self


DEFAULT_HAND_RAISERS: tuple[str, ...] = ("demo_request", "contact_sales", "trial_signup")


class ScoringRules(_Strict):
    """A complete rules document; each stored one is a new version."""

    fit: list[FitRule] = Field(max_length=200)
    engagement: EngagementRules
    mql_threshold: Annotated[int, Field(ge=1, le=10_000)]
    grades: Grades
    # Contract v2; absent in older documents, which get these defaults.
    hand_raisers: list[EngagementTypeName] = Field(
        default_factory=lambda: list(DEFAULT_HAND_RAISERS),
        max_length=100,
        description="engagement types that make an MQL at once unless the fit grade is D",
    )
    fit_grades: FitGrades = Field(default_factory=FitGrades)
    engagement_levels: EngagementLevels = Field(default_factory=EngagementLevels)
    mql_matrix: dict[FitGradeName, EngagementLevel | None] | None = Field(
        default=None,
        description=(
            "per fit grade (A-D), the lowest engagement level (1-4) that makes an MQL; null "
            "or a grade left out: never by the matrix. When set, it replaces "
            "mql_threshold as the MQL rule (hand-raisers still count)"
        ),
    )


def default_rules() -> ScoringRules:
    """The rules shipped in ``default_rules.json`` (stored as version 1 on first start)."""
    text = resources.files("leadflow_scoring").joinpath("default_rules.json").read_text("utf-8")
    return ScoringRules.model_validate(json.loads(text))
