"""Input types that keep bad input a 422: bounded lengths, no NUL bytes; and the rule that a
body a GET returned can be sent back (its read-only fields ignored, contract v2)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_no_nul)
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=100), AfterValidator(_no_nul)
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=5000), AfterValidator(_no_nul)
]
Identifier = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@\-]+$"
    ),
]

# The fields GET answers carry that no PUT/POST sets: ignored in a body, not refused.
READ_ONLY_FIELDS = frozenset({"version", "created_at", "created_by", "updated_at"})


def without_read_only(value: Any, fields: Collection[str] = READ_ONLY_FIELDS) -> Any:
    """``value`` without ``fields`` when it is a JSON object (for a ``mode="before"``
    validator); any other unknown field still fails the model's ``extra="forbid"``."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in fields}
    return value
