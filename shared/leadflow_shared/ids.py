"""Sortable identifiers (UUIDv7) and timezone-aware clock."""

from __future__ import annotations

from datetime import UTC, datetime

import uuid6


def new_id() -> str:
    """A new UUIDv7 as a string: unique and sortable by creation time."""
    return str(uuid6.uuid7())


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
