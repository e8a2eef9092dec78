"""What the redactor hides and what it leaves: every detector on a realistic string, the checksums that
spare order numbers, the IP address setting, the count per detector, and the formatters that apply it."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY, generate_latest

from apps.proxy.checks import check_log_settings
from apps.proxy.errors import unexpected
from apps.proxy.logging import JsonFormatter, TextFormatter
from edge_project.redaction import Redactor, redact

EDGE_KEY = "sk-edge-" + "Q" * 20 + "x7_-" + "a" * 19
SECRETS = {  # detector → a planted value
    "edge_key": EDGE_KEY,
    "anthropic_key": "sk-ant-api03-" + "b" * 40,
    "openai_key": "sk-proj-" + "C1" * 20,
    "google_key": "AIzaSyD" + "d" * 32,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "email": "alice.smith+billing@example.co.uk",
    "card": "4111 1111 1111 1111",
    "ssn": "078-05-1120",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "phone": "+44 20 7946 0958",
}


@pytest.mark.parametrize(("detector", "secret"), SECRETS.items())
def test_it_hides_each_kind_of_secret_and_says_which(detector: str, secret: str):
    text = f"upstream said: {secret} (retry later)"

    assert redact(text) == f"upstream said: [REDACTED:{detector}] (retry later)"


@pytest.mark.parametrize("text", [
    "Authorization: Bearer abc.def-ghi_jkl123456",
    "api-key: 0123456789abcdef0123456789abcdef",
    "North American phone (415) 555-2671 or 415.555.2671",
    "card 4111-1111-1111-1111 and 5500005555555559",
    "IBAN DE89370400440532013000",
])
def test_it_hides_labelled_and_differently_written_secrets(text: str):
    hidden = redact(text)

    assert "[REDACTED:" in hidden
    assert not any(digits in hidden for digits in ("abc.def", "0123456789abcdef", "555-2671", "555.2671",
                                                   "4111", "5500", "370400"))


@pytest.mark.parametrize("text", [
    "order 4111111111111112 shipped",  # fails Luhn: an order number, not a card
    "invoice GB82WEST12345698765433",  # fails mod 97
    "key prefix sk-edge-AbCdEfGh",  # the 16-character display prefix is meant to be shown
    "req_0123456789abcdef01234567 took 1234 ms at 2026-12-06T06:11:03 on gpt-4o-2024-08-06",
    "HTTP 502 after 2 attempts; version 1.2.3",
])
def test_it_leaves_what_only_looks_like_a_secret(text: str):
    assert redact(text) == text


def test_ip_addresses_are_hidden_only_when_configured():
    text = "client 203.0.113.9 via 2001:db8::7 at 06:11:03"

    assert Redactor(ip_addresses=False)(text) == text
    assert Redactor(ip_addresses=True)(text) == "client [REDACTED:ip_address] via [REDACTED:ip_address] at 06:11:03"


def test_each_redaction_is_counted_by_detector():
    before = REGISTRY.get_sample_value("redactions_total", {"detector": "email"}) or 0

    redact("to a@example.com and b@example.org")

    assert REGISTRY.get_sample_value("redactions_total", {"detector": "email"}) == before + 2
    exposition = generate_latest(REGISTRY).decode()
    assert 'redactions_total{detector="email"}' in exposition and "example.com" not in exposition


def raise_inside_the_gateway() -> BaseException:
    try:
        raise RuntimeError(f"provider rejected {SECRETS['anthropic_key']} for {SECRETS['email']}")
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_an_unexpected_errors_message_and_traceback_are_redacted(
    caplog: pytest.LogCaptureFixture, formatter: logging.Formatter
):
    caplog.handler.setFormatter(formatter)

    with caplog.at_level(logging.INFO):
        unexpected(raise_inside_the_gateway())  # the API path's funnel logs it with its traceback
        logging.getLogger("apps.billing.spool").warning("could not spool for %s (card %s)", SECRETS["email"],
                                                         SECRETS["card"])

    assert "RuntimeError" in caplog.text and "raise_inside_the_gateway" in caplog.text  # the traceback is there
    assert "[REDACTED:anthropic_key]" in caplog.text and "[REDACTED:card]" in caplog.text
    assert not [secret for secret in SECRETS.values() if secret in caplog.text]


def test_a_json_line_redacts_extras_but_keeps_gateway_made_ids():
    record = logging.makeLogRecord({"name": "edge.requests", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": "request", "request_id": "req_4111111111111111",
                                    "model": f"gpt-4o {SECRETS['email']}", "input_tokens": 4111111111111111})

    line = orjson.loads(JsonFormatter().format(record))

    assert line["request_id"] == "req_4111111111111111" and line["input_tokens"] == 4111111111111111
    assert line["model"] == "gpt-4o [REDACTED:email]"
    assert {"ts", "level", "logger", "message"} <= set(line)


def test_an_unknown_log_format_is_refused_at_start(settings: Any):
    settings.EDGE_LOG_FORMAT = "yaml"

    assert [message.id for message in check_log_settings()] == ["edge.E150"]
