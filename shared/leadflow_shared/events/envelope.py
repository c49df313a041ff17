"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

Attributes travel as ``ce_*`` headers, the value is the JSON data, the key is the lead id.
Any Kafka client can read these messages without leadflow's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow_shared.ids import new_id, utcnow

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class EnvelopeError(ValueError):
    """A Kafka message that is not a valid leadflow CloudEvent."""


@dataclass(frozen=True)
class KafkaRecord:
    """What goes on the wire: key, value and headers."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class CloudEvent:
    """One event: the CloudEvents attributes plus its JSON data."""

    type: str
    source: str
    subject: str
    data: dict[str, Any]
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=utcnow)
    traceparent: str | None = None
    # Extension attribute ``lane``: "bulk" for events caused by bulk work (served after
    # live events by every consumer); absent for live events.
    lane: str | None = None

    @property
    def lead_id(self) -> str:
        return str(self.data["lead_id"])

    def to_kafka(self, key: str | None = None) -> KafkaRecord:
        """Encode in binary content mode; ``key`` defaults to the data's ``lead_id``."""
        headers = [
            ("ce_specversion", SPECVERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        if self.traceparent:
            headers.append(("traceparent", self.traceparent.encode()))
        if self.lane:
            headers.append(("ce_lane", self.lane.encode()))
        value = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False).encode()
        return KafkaRecord(key=(key or self.lead_id).encode(), value=value, headers=headers)

    @classmethod
    def from_kafka(
        cls, value: bytes | None, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]
    ) -> CloudEvent:
        """Decode a binary-mode message; raises :class:`EnvelopeError` when it is not one."""
        try:
            h = {k: v.decode() for k, v in headers}
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"header is not UTF-8: {exc}") from exc
        missing = [
            name
            for name in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")
            if not h.get(name)
        ]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if h["ce_specversion"] != SPECVERSION:
            raise EnvelopeError(f"unsupported ce_specversion {h['ce_specversion']!r}")
        if h.get("content-type", CONTENT_TYPE).split(";")[0].strip() != CONTENT_TYPE:
            raise EnvelopeError(f"unsupported content-type {h.get('content-type')!r}")
        try:
            time = datetime.fromisoformat(h["ce_time"])
        except ValueError as exc:
            raise EnvelopeError(f"ce_time is not RFC 3339: {h['ce_time']!r}") from exc
        if value is None:
            raise EnvelopeError("message has no value")
        try:
            data = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("lead_id"), str):
            raise EnvelopeError("data must be a JSON object carrying a string lead_id")
        return cls(
            id=h["ce_id"],
            source=h["ce_source"],
            type=h["ce_type"],
            time=time,
            subject=h.get("ce_subject") or data["lead_id"],
            data=data,
            traceparent=h.get("traceparent"),
            lane=h.get("ce_lane") or None,
        )
