"""Does a lead meet a rule's conditions? Pure functions of plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadflow_routing.rules.document import Condition, Rule


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def field_value(lead: Mapping[str, Any], name: str) -> Any:
    """The lead's value of ``name``; a dotted name reads into a nested object
    (``account.owner``), None when any part is missing."""
    value: Any = lead
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def condition_holds(condition: Condition, lead: Mapping[str, Any]) -> bool:
    actual = field_value(lead, condition.field)
    op, expected = condition.op, condition.value
    if op == "exists":
        return actual not in (None, "")
    if op == "not_exists":
        return actual in (None, "")
    if actual is None:
        return op in {"ne", "not_in"}
    if op == "eq":
        return bool(_norm(actual) == _norm(expected))
    if op == "ne":
        return bool(_norm(actual) != _norm(expected))
    if op == "in":
        return _norm(actual) in {_norm(v) for v in expected}
    if op == "not_in":
        return _norm(actual) not in {_norm(v) for v in expected}
    if op == "contains_any":
        text = str(actual).lower()
        return any(str(v).lower() in text for v in expected)
    if not isinstance(actual, int | float) or isinstance(actual, bool):
        return False
    if op == "gte":
        return bool(actual >= expected)
    return bool(actual < expected)  # lt


def rule_matches(rule: Rule, lead: Mapping[str, Any]) -> bool:
    """All conditions hold (a rule without conditions matches every lead)."""
    return all(condition_holds(c, lead) for c in rule.conditions)
