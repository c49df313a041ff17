"""Which events a subscription wants: exact types, ``*`` for all, or ``lead.*`` prefixes."""

from __future__ import annotations

from collections.abc import Iterable

from leadflow_shared.events import EVENT_MODELS

KNOWN_EVENT_TYPES: frozenset[str] = frozenset(EVENT_MODELS)
ALL_EVENTS = "*"


def pattern_matches(pattern: str, event_type: str) -> bool:
    """True when ``pattern`` (an exact type, ``*`` or ``prefix.*``) covers ``event_type``."""
    if pattern == ALL_EVENTS:
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def subscribes_to(patterns: Iterable[str], event_type: str) -> bool:
    return any(pattern_matches(pattern, event_type) for pattern in patterns)


def is_known_pattern(pattern: str) -> bool:
    """A pattern is accepted only when it names, or matches, at least one known event type."""
    if pattern == ALL_EVENTS or pattern in KNOWN_EVENT_TYPES:
        return True
    if pattern.endswith(".*") and len(pattern) > 2 and "*" not in pattern[:-2]:
        return any(pattern_matches(pattern, known) for known in KNOWN_EVENT_TYPES)
    return False
