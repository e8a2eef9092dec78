"""Tallies write out exactly what prometheus_client would have counted, bucket for bucket."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from apps.proxy.metrics.tally import HistogramTally, Tally

BUCKETS = (0.001, 0.01, 0.1, 1.0)
VALUES = (0.0005, 0.001, 0.0011, 0.01, 0.5, 1.0, 3.0, 0.0)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples if not s.name.endswith("_created")}


def test_a_histogram_tally_counts_each_observation_in_the_bucket_observe_would():
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    expected = Histogram("h", "h", buckets=BUCKETS, registry=direct)
    tally = HistogramTally(Histogram("h", "h", buckets=BUCKETS, registry=tallied))

    for value in VALUES:
        expected.observe(value)
        tally.observe(value)
    assert samples(tallied)[("h_count", ())] == 0  # nothing written before the flush
    tally.flush()
    tally.flush()  # a second flush with nothing new adds nothing

    assert samples(tallied) == samples(direct)


def test_a_tally_writes_what_was_added_once():
    registry = CollectorRegistry()
    counter = Counter("c", "c", registry=registry)
    tally = Tally(counter)

    tally.add()
    tally.add(2.5)
    tally.flush()
    tally.flush()

    assert samples(registry)[("c_total", ())] == 3.5
