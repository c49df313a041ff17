from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from leadflow_shared.events import CloudEvent, EnvelopeError, LeadScored, parse_event_data


def _event() -> CloudEvent:
    return CloudEvent(
        type="lead.scored",
        source="leadflow/scoring",
        subject="lead-1",
        data={"lead_id": "lead-1", "score": 70},
        time=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


def test_binary_mode_headers_are_exactly_the_contracts() -> None:
    event = _event()
    record = event.to_kafka()
    assert dict(record.headers) == {
        "ce_specversion": b"1.0",
        "ce_id": event.id.encode(),
        "ce_source": b"leadflow/scoring",
        "ce_type": b"lead.scored",
        "ce_time": b"2026-11-27T10:00:00+00:00",
        "ce_subject": b"lead-1",
        "content-type": b"application/json",
        "traceparent": b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    assert record.key == b"lead-1"
    assert json.loads(record.value) == {"lead_id": "lead-1", "score": 70}


def test_round_trip_keeps_every_attribute() -> None:
    event = _event()
    record = event.to_kafka()
    assert CloudEvent.from_kafka(record.value, record.headers) == event


@pytest.mark.parametrize(
    ("value", "headers", "message"),
    [
        (b"{}", [], "missing CloudEvents headers"),
        (b"{not json", None, "not JSON"),
        (b"[1]", None, "JSON object"),
        (b'{"lead_id": 5}', None, "string lead_id"),
        (b"\xff\xfe", None, "not JSON"),
        (None, None, "no value"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(
    value: bytes | None, headers: list[tuple[str, bytes]] | None, message: str
) -> None:
    good_headers = _event().to_kafka().headers
    with pytest.raises(EnvelopeError, match=message):
        CloudEvent.from_kafka(value, good_headers if headers is None else headers)


def test_wrong_specversion_or_time_is_rejected() -> None:
    record = _event().to_kafka()
    bad = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in record.headers]
    with pytest.raises(EnvelopeError, match="specversion"):
        CloudEvent.from_kafka(record.value, bad)
    bad = [(k, b"yesterday" if k == "ce_time" else v) for k, v in record.headers]
    with pytest.raises(EnvelopeError, match="RFC 3339"):
        CloudEvent.from_kafka(record.value, bad)


def test_event_data_is_typed_and_validated() -> None:
    data = parse_event_data(
        "lead.scored",
        {
            "lead_id": "l",
            "score": 1,
            "fit": 1,
            "engagement": 0,
            "grade": "D",
            "mql": False,
            "rules_version": 1,
            "scored_at": "2026-11-27T10:00:00Z",
        },
    )
    assert isinstance(data, LeadScored) and data.topic == "leads.scored"
    with pytest.raises(KeyError):
        parse_event_data("lead.teleported", {"lead_id": "l"})
