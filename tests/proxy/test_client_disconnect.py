"""A client that hangs up mid-stream: the provider request is cancelled, and the ledger still records it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve
from tests.harness.sockets import established_connections
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")

CHUNK_DELAY_MS = 250  # 12 words: the whole stream would take ~3.5 s


@pytest.fixture
def own_fake() -> Iterator[BackgroundFakeUpstream]:
    """A fake nobody else talks to, so every connection it holds is this test's."""
    with BackgroundFakeUpstream() as fake:
        yield fake


def test_it_cancels_the_upstream_request_when_the_client_hangs_up(gateway: GatewayProcess, own_fake):
    served: Served = serve(gateway, f"{own_fake.base_url}/v1")
    own_fake.set_rule(served.upstream_model, chunk_delay_ms=CHUNK_DELAY_MS)
    raw = served.client().chat.completions.with_raw_response.create(
        model=served.model, messages=[{"role": "user", "content": "please write me a long story"}], stream=True
    )
    stream = raw.parse()
    relayed = ""
    for chunk in stream:
        relayed += chunk.choices[0].delta.content or ""
        if relayed:
            break
    assert established_connections(own_fake.port) == 1

    stream.close()

    # Still streaming, or idle in the gateway's pool, the connection would stay up if not cancelled.
    wait_until(lambda: established_connections(own_fake.port) == 0, timeout_s=1.0, what="upstream hung up")
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.status, row.http_status, row.usage_source) == ("cancelled", 499, "estimated")
    assert row.prompt_tokens > 0 and 1 <= row.completion_tokens < 12
    assert row.latency_ms < 12 * CHUNK_DELAY_MS


def test_it_records_a_client_that_hangs_up_as_soon_as_the_stream_begins(gateway: GatewayProcess, own_fake):
    # The gateway answers a stream only once its first content has arrived (until then it may still
    # fail over), so the earliest a client can leave a begun stream is right after that first token.
    served: Served = serve(gateway, f"{own_fake.base_url}/v1")
    own_fake.set_rule(served.upstream_model, chunk_delay_ms=CHUNK_DELAY_MS)
    raw = served.client().chat.completions.with_raw_response.create(
        model=served.model, messages=[{"role": "user", "content": "hello"}], stream=True
    )

    raw.parse().close()

    wait_until(lambda: established_connections(own_fake.port) == 0, timeout_s=1.0, what="upstream hung up")
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.status, row.http_status) == ("cancelled", 499)
    assert row.completion_tokens <= 1 and row.ttft_ms is not None
    assert row.prompt_tokens > 0 and row.usage_source == "estimated"
