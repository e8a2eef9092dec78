"""The store's parts on their own: the stored response's wire form, the in-process store's bounds, the
settings' checks."""

from __future__ import annotations

from typing import Any

import pytest

from apps.proxy.idempotency import StoredResponse
from apps.proxy.idempotency.local import Flight, LocalStore, Taken
from apps.proxy.idempotency.stored import Completed
from tests.idempotency.conftest import stored


def test_a_stored_response_survives_its_wire_form_byte_for_byte():
    response = StoredResponse(201, (("content-type", "text/event-stream"), ("x-edge-cost-usd", "0.000012")),
                              b'data: {"a": "\\n\xc3\xa9"}\n\n' + bytes(range(256)), stream=True)

    assert StoredResponse.from_bytes(response.to_bytes()) == response


def test_the_in_process_store_keeps_a_response_too_large_for_it_as_one_that_completed():
    store = LocalStore(max_bytes=4000)
    taken = store.claim("k", "f")
    assert isinstance(taken, Taken)

    store.complete("k", taken.flight, Completed("f", stored("x" * 1500)), ttl_s=60)

    kept = store.claim("k", "f")
    assert isinstance(kept, Completed) and kept.response.truncated and kept.response.body == b""
    assert kept.response.header("X-Request-Id") == "req_1"


def test_the_in_process_store_gives_a_second_claimer_the_flight_in_progress():
    store = LocalStore(max_bytes=4000)
    taken = store.claim("k", "f")
    assert isinstance(taken, Taken)

    again = store.claim("k", "f")

    assert isinstance(again, Flight) and again is taken.flight
    store.abandon("k", taken.flight)
    assert isinstance(store.claim("k", "f"), Taken)


@pytest.mark.parametrize(("setting", "value", "check_id"), [
    ("EDGE_IDEMPOTENCY_TTL_S", 0, "edge.E090"),
    ("EDGE_IDEMPOTENCY_MAX_BYTES", 0, "edge.E091"),
    ("EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES", -1, "edge.E091"),
])
def test_misconfigured_idempotency_is_caught_at_start(settings: Any, setting: str, value: object, check_id: str):
    from apps.proxy.checks import check_idempotency_settings

    assert check_idempotency_settings() == []
    setattr(settings, setting, value)

    assert [message.id for message in check_idempotency_settings()] == [check_id]
