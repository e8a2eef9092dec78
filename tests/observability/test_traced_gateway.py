"""A real gateway process exporting traces over OTLP to a collector in the test: an incoming traceparent is
continued up to the provider, the spans follow the GenAI conventions, one server span covers a whole stream,
the per-request log line has every field, and secrets planted wherever a client or provider can put them
reach neither the process's output nor its spans."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from apps.billing.keys import KEY_PREFIX
from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.proxy.request_log import FIELDS
from tests.harness.gateway import GatewayProcess
from tests.harness.otlp_collector import CollectedSpan, OtlpCollector
from tests.harness.served import Served, serve
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpCollector]:
    with OtlpCollector() as running:
        yield running


@pytest.fixture(scope="module")
def traced_gateway(collector: OtlpCollector, django_db_setup: None, django_db_blocker: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("traced-gateway")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "20"}
    with django_db_blocker.unblock():
        process = GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log", env=env)
    with process:
        yield process


@pytest.fixture
def served(traced_gateway: GatewayProcess, fake: BackgroundFakeUpstream) -> Served:
    return serve(traced_gateway, f"{fake.base_url}/v1")


def traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-01"


def spans_of(collector: OtlpCollector, trace_id: str, *, including: Callable[[CollectedSpan], bool]
             ) -> list[CollectedSpan]:
    """The trace's spans, once one matching ``including`` (the last to end, usually the server span) is in."""
    wait_until(lambda: any(including(span) for span in collector.of_trace(trace_id)), what="the span exported")
    return collector.of_trace(trace_id)


def server_span(span: CollectedSpan) -> bool:
    return span.kind == "server"


def request_line(gateway: GatewayProcess, request_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for line in gateway.log_path.read_text(errors="replace").splitlines():
            if request_id in line and '"edge.requests"' in line:
                parsed: dict[str, Any] = orjson.loads(line)
                return parsed
        return None

    wait_until(lambda: find() is not None, what="the request's log line")
    return find() or {}


def test_it_continues_an_incoming_trace_up_to_the_provider(served: Served, fake: BackgroundFakeUpstream,
                                                           collector: OtlpCollector):
    trace_id, parent_id, header = traceparent()

    response = served.post(served.chat_body(), headers=served.headers(traceparent=header))

    assert response.status_code == 200, response.text
    spans = spans_of(collector, trace_id, including=server_span)
    by_name = {span.name: span for span in spans}
    server = next(span for span in spans if span.kind == "server")
    assert server.name == "POST /v1/chat/completions" and server.parent_id == parent_id
    assert server.resource["service.name"] == "llm-edge"
    seen_upstream = fake.requests()[-1]["headers"]["traceparent"]
    assert seen_upstream.split("-")[1] == trace_id
    http_client = next(span for span in spans if span.span_id == seen_upstream.split("-")[2])
    attempt = by_name[f"chat {served.upstream_model}"]
    assert http_client.parent_id == attempt.span_id  # the provider call sits under its attempt
    assert attempt.kind == "client" and attempt.attributes["gen_ai.provider.name"] == "openai"
    assert attempt.attributes["gen_ai.operation.name"] == "chat"
    assert attempt.attributes["gen_ai.request.model"] == served.upstream_model
    assert (attempt.attributes["server.address"], attempt.attributes["server.port"]) == ("127.0.0.1", fake.port)
    operation = by_name[f"chat {served.model}"]
    assert operation.parent_id == server.span_id and attempt.parent_id == operation.span_id
    usage = response.json()["usage"]
    assert operation.attributes["gen_ai.request.model"] == served.model
    assert operation.attributes["gen_ai.response.model"] == served.upstream_model
    assert operation.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert operation.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    steps = {"edge.route", "edge.admission", "edge.cache.lookup", "edge.ledger.record"}
    assert steps <= set(by_name) and all(by_name[step].parent_id == operation.span_id for step in steps)


def test_one_server_span_covers_a_whole_stream(served: Served, fake: BackgroundFakeUpstream,
                                               collector: OtlpCollector):
    fake.set_rule(served.upstream_model, stream_chunks=5, chunk_delay_ms=80)
    trace_id, _, header = traceparent()
    started = time.monotonic()

    with httpx.stream("POST", f"{served.gateway.url}/v1/chat/completions", json=served.chat_body(stream=True),
                      headers=served.headers(traceparent=header), timeout=10) as response:
        body = b"".join(response.iter_bytes())
    took_s = time.monotonic() - started

    assert body.endswith(b"data: [DONE]\n\n")
    spans = spans_of(collector, trace_id, including=server_span)
    servers = [span for span in spans if span.kind == "server"]
    assert len(servers) == 1 and not [span for span in spans if "http send" in span.name]
    server_s = (servers[0].end_ns - servers[0].start_ns) / 1e9
    operation = next(span for span in spans if span.name == f"chat {served.model}")
    attempt = next(span for span in spans if span.name == f"chat {served.upstream_model}")
    assert server_s > 0.3 and server_s <= took_s  # the chunks came 80 ms apart: the span saw them all
    assert operation.end_ns <= servers[0].end_ns and (operation.end_ns - operation.start_ns) / 1e9 > 0.3
    assert attempt.end_ns - attempt.start_ns < operation.end_ns - operation.start_ns  # the attempt ends at TTFT


def test_the_request_line_has_every_field(served: Served, traced_gateway: GatewayProcess,
                                          collector: OtlpCollector):
    trace_id, _, header = traceparent()

    response = served.post(served.chat_body(), headers=served.headers(traceparent=header))

    line = request_line(traced_gateway, response.headers["x-request-id"])
    assert set(FIELDS) | {"ts", "level", "logger", "message", "trace_id", "span_id"} <= set(line)
    usage = response.json()["usage"]
    assert line["tenant"] == served.tenant.slug and line["key_prefix"] == served.key.prefix
    assert (line["endpoint"], line["model"], line["provider"]) == ("chat.completions", served.model,
                                                                   served.route.provider.name)
    assert (line["status"], line["http_status"], line["error_type"]) == ("ok", 200, None)
    assert (line["input_tokens"], line["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert line["cost_usd"] == response.headers["x-edge-cost-usd"]
    assert line["route"] == response.headers["x-edge-route"] and line["cache"] == response.headers["x-edge-cache"]
    assert line["latency_ms"] >= 0 and line["ttft_ms"] is None and line["trace_id"] == trace_id


PLANTED = {
    "edge_key": KEY_PREFIX + secrets.token_urlsafe(32),
    "anthropic_key": "sk-ant-api03-" + secrets.token_urlsafe(30),
    "openai_key": "sk-proj-" + secrets.token_hex(24),
    "email": "planted.person@example.org",
    "card": "4111111111111111",
    "ssn": "078-05-1120",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlLXBsYW50ZWQ",
}
ORDER_NUMBER = "4111111111111112"  # fails Luhn: not a card, so it must survive


def test_planted_secrets_reach_no_log_line_and_no_span(served: Served, fake: BackgroundFakeUpstream,
                                                       traced_gateway: GatewayProcess, collector: OtlpCollector):
    everything = " ".join(PLANTED.values())
    # In a prompt and in request headers (one a bearer token that is not a key of ours).
    ok = served.post(served.chat_body(f"remember {everything}"), headers=served.headers(**{"x-note": everything}))
    refused = served.post(served.chat_body(), headers={"Authorization": f"Bearer {PLANTED['edge_key']}"})
    # In the model name, which the per-request line and the request's span name carry.
    unknown = served.post({"model": f"gpt {PLANTED['email']}", "messages": [{"role": "user", "content": "hi"}]})
    # In a provider's error body, which becomes the provider attempt's span status.
    fake.set_rule(served.upstream_model, fail_status=400, error_message=f"order {ORDER_NUMBER}: {everything}")
    trace_id, _, header = traceparent()
    rejected = served.post(served.chat_body(), headers=served.headers(traceparent=header))

    assert (ok.status_code, refused.status_code, unknown.status_code, rejected.status_code) == (200, 401, 404, 400)
    spans = spans_of(collector, trace_id, including=server_span)
    attempt = next(span for span in spans if span.name == f"chat {served.upstream_model}")
    assert attempt.status_code == 2 and attempt.attributes["error.type"] == "invalid_request_error"
    assert ORDER_NUMBER in attempt.status_message and "[REDACTED:anthropic_key]" in attempt.status_message
    for response in (ok, refused, unknown):
        request_line(traced_gateway, response.headers["x-request-id"])  # each line is written by now
    assert request_line(traced_gateway, unknown.headers["x-request-id"])["model"] == "gpt [REDACTED:email]"
    output, exported = traced_gateway.log_path.read_text(errors="replace"), collector.all_bytes()
    assert [name for name, secret in PLANTED.items() if secret in output or secret.encode() in exported] == []


def test_admin_pages_are_traced_by_route(traced_gateway: GatewayProcess, collector: OtlpCollector):
    trace_id, _, header = traceparent()

    response = httpx.get(f"{traced_gateway.url}/admin/login/", headers={"traceparent": header})

    assert response.status_code == 200
    spans = spans_of(collector, trace_id, including=server_span)
    assert any(span.attributes.get("http.route") == "admin/login/" for span in spans)


def test_everything_the_process_writes_is_a_json_line_and_uvicorns_access_log_stays_off(
    served: Served, traced_gateway: GatewayProcess
):
    response = served.post(served.chat_body())
    request_line(traced_gateway, response.headers["x-request-id"])

    lines = [orjson.loads(line) for line in traced_gateway.log_path.read_text().splitlines()]
    assert all(isinstance(line, dict) and {"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"] == "uvicorn.error" and "startup complete" in line["message"] for line in lines)
    assert not [line for line in lines if line["logger"] == "uvicorn.access" or "color_message" in line]
