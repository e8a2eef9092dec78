"""Every failure the gateway can answer has one owner in the metrics' error_type: client, policy, provider
or gateway. The table below is checked against every error code written in the code base."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from apps.providers.errors import Fault
from apps.proxy.faults import fault_of
from apps.routing.attempts import Attempt

ROOT = Path(__file__).resolve().parents[2]
CODE_LITERAL = re.compile(r'\bcode(?: = |=)"([a-z_]+)"')
C, PO, PR, G = Fault.CLIENT, Fault.POLICY, Fault.PROVIDER, Fault.GATEWAY
# code → (the HTTP status the client gets, whose fault it is)
EXPECTED = {
    "empty_body": (400, C), "invalid_json": (400, C), "invalid_type": (400, C), "invalid_value": (400, C),
    "invalid_input": (400, C), "invalid_cache_ttl": (400, C), "missing_required_parameter": (400, C),
    "unsupported_content_type": (415, C), "missing_api_key": (401, C), "invalid_api_key": (401, C),
    "model_not_found": (404, C), "method_not_allowed": (405, C), "request_too_large": (413, C),
    "idempotency_key_reused": (422, C), "idempotency_key_in_use": (409, C),
    "idempotency_response_too_large": (422, C), "metrics_access_denied": (401, C),
    "unsupported_by_provider": (400, C), "unsupported_parameter": (400, C), "unknown_endpoint": (404, C),
    "not_found": (404, C), "insufficient_permissions": (403, C),
    "rate_limit_exceeded": (429, PO), "insufficient_quota": (429, PO), "max_cost_exceeded": (400, PO),
    "too_many_failed_authentications": (429, PO),
    "upstream_error": (502, PR), "upstream_timeout": (504, PR), "upstream_unreachable": (502, PR),
    "upstream_malformed_response": (502, PR), "upstream_stream_incomplete": (502, PR),
    "upstream_response_too_large": (502, PR), "upstream_overloaded": (503, PR), "upstream_rate_limited": (429, PR),
    "upstream_auth_failed": (502, PR), "deployments_unavailable": (503, PR), "request_deadline_exceeded": (504, PR),
    "stream_deadline_exceeded": (504, PR),
    "database_unavailable": (503, G), "no_deployment_available": (503, G), "server_error": (500, G),
}


def test_every_error_code_in_the_code_base_has_a_fault():
    written = {
        code for path in (ROOT / "apps").rglob("*.py") if "fake_upstream" not in path.parts
        for code in CODE_LITERAL.findall(path.read_text())
    }
    assert written - EXPECTED.keys() == set()


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_it_names_whose_fault_each_code_is(code: str):
    status, fault = EXPECTED[code]
    assert fault_of(code, status) is fault


def test_a_providers_own_answer_is_judged_as_routing_judged_its_attempt(make_attempt):
    rejected = make_attempt("context_length_exceeded", fault="client")
    failed = make_attempt("some_provider_code", fault="provider")

    assert fault_of("context_length_exceeded", 400, [rejected]) is Fault.CLIENT
    assert fault_of("some_provider_code", 500, [failed]) is Fault.PROVIDER
    assert fault_of("invalid_request_error", 400) is Fault.CLIENT  # a provider's 4xx without a code: its type


@pytest.fixture
def make_attempt():
    def make(outcome: str, *, fault: str) -> Attempt:
        return Attempt(target=None, outcome=outcome, duration_ms=1.0, fault=fault)  # type: ignore[arg-type]
    return make
