"""consumer_groups: each group's own topics read from a service's real /metrics text."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from leadflow_shared.ledger import consumer_groups


def test_groups_and_their_topics_come_from_the_consumed_counter() -> None:
    registry = CollectorRegistry()
    consumed = Counter(
        "leadflow_events_consumed",
        "events consumed",
        ["consumer", "topic", "outcome"],
        registry=registry,
    )
    consumed.labels("routing", "leads.scored", "handled").inc(3)
    consumed.labels("routing", "deals.lifecycle", "skipped").inc()
    consumed.labels("scoring", "leads.captured", "handled").inc()
    other = Counter("leadflow_other", "not consumption", ["consumer", "topic"], registry=registry)
    other.labels("console", "leads.routing").inc()
    text = generate_latest(registry).decode()

    assert consumer_groups(text) == {
        "routing": {"leads.scored", "deals.lifecycle"},
        "scoring": {"leads.captured"},
    }
