"""The rule set document (``GET/PUT /v1/routing/rules``), validated strictly."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow_shared.validation import Identifier, Name, ShortText, without_read_only

Role = Literal["sdr", "ae", "am"]
Rotation = Literal["round_robin", "weighted", "load_balanced"]
# ``account_owner``: a lead from a known account goes to the account's owner when they are
# available, else to the rule's pool by the rule's ``fallback_strategy``.
Strategy = Literal["round_robin", "weighted", "load_balanced", "account_owner"]
Operator = Literal["eq", "ne", "in", "not_in", "gte", "lt", "exists", "not_exists", "contains_any"]
LeadField = Literal[
    "country",
    "state",
    "employees",
    "industry",
    "company",
    "title",
    "source",
    "campaign",
    "score",
    # The account matched at capture (absent: the lead matched no account).
    "account.account_id",
    "account.owner",
    "account.match",
    "account.confidence",
    # Fit grade, when events carry one (absent otherwise: only ``ne``, ``not_in`` and
    # ``not_exists`` hold).
    "fit_grade",
]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: LeadField
    op: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Condition:
        if self.op in {"in", "not_in", "contains_any"}:
            if not isinstance(self.value, list) or not self.value or len(self.value) > 500:
                raise ValueError(f"{self.op} needs a non-empty list value (at most 500 items)")
        elif self.op in {"gte", "lt"}:
            if isinstance(self.value, bool) or not isinstance(self.value, int | float):
                raise ValueError(f"{self.op} needs a number value")
        elif self.op in {"eq", "ne"}:
            if self.value is None or isinstance(self.value, list | dict):
                raise ValueError(f"{self.op} needs a single value")
        return self


class Pool(BaseModel):
    """Reps of the rule's role, narrowed by team, territory, segment or explicit ids."""

    model_config = ConfigDict(extra="forbid")

    team: ShortText | None = None
    territory: ShortText | None = None
    segment: ShortText | None = None
    reps: list[Identifier] | None = Field(default=None, max_length=500)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: Name | None = None
    role: Role
    conditions: list[Condition] = Field(default_factory=list, max_length=50)
    pool: Pool = Field(default_factory=Pool)
    strategy: Strategy = "round_robin"
    # ``account_owner`` only: the pool's rotation when the account's owner cannot take it.
    fallback_strategy: Rotation = "round_robin"
    sla_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30)] | None = None
    # The SLA clock runs only in the owner's working hours, in their time zone.
    sla_business_hours: bool = False
    # From this many SLA breaches of a lead on, each breach escalates (``lead.escalated``)
    # to the manager of the rep who breached.
    escalate_after_breaches: Annotated[int, Field(ge=1, le=100)] | None = None
    # A lead nobody in the pool could take for this long goes to the ``fallback`` pool
    # (of the same role), else to the team's manager.
    max_wait_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30)] | None = None
    fallback: Pool | None = None


class RuleSet(BaseModel):
    """Rules are tried in order; the first whose conditions all hold and whose pool has an
    available rep wins. A role with no matching rule falls back to all reps of that role."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(max_length=500)
    default_sla_minutes: int = Field(default=30, ge=1, le=60 * 24 * 30)

    @model_validator(mode="before")
    @classmethod
    def _ignore_read_only(cls, value: Any) -> Any:
        # Subclasses that carry those fields, like the GET answer, keep them.
        return without_read_only(value) if cls is RuleSet else value

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        return self


DEFAULT_RULES = RuleSet(
    rules=[
        Rule(id="all-sdrs", name="Every MQL to the SDR team", role="sdr"),
        Rule(id="all-aes", name="Every qualified lead to the AE team", role="ae"),
        Rule(id="all-ams", name="Every won account to an account manager", role="am"),
    ],
    default_sla_minutes=30,
)
