"""`manage.py edge_export`: the stored configuration as a file edge_apply takes back unchanged, minus secrets."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.billing.models import Tenant
from apps.providers.models import Provider
from apps.routing.models import Deployment
from tests.harness.config_commands import apply_text, delete_all_configuration, export

pytestmark = pytest.mark.django_db

SECRET = "sk-upstream-secret-1234567890"

CONFIG = """\
providers:
  - name: openai-main
    kind: openai
    base_url: "https://api.openai.com/v1"
    api_key: "${OPENAI_KEY_FOR_TEST}"
    timeout_s: 45.5
    headers: {OpenAI-Organization: org-123, X-Literal: "$${NOT_A_VARIABLE}"}
  - name: vllm-local
    kind: openai_compatible
    base_url: "http://vllm:8000/v1"
    enabled: false
routing_policies:
  - {name: spread, strategy: weighted, max_retries: 0}
  - {name: default, strategy: failover}
  - {name: resilient, strategy: hybrid, breaker_reset_s: 5, hybrid_cost_weight: 0.6, backoff_multiplier: 3,
     fallbacks: {context_length_exceeded: [gpt-4o-mini], default: [unserved]}}
models:
  - name: gpt-4o-mini
    policy: default
    deployments:
      - {provider: vllm-local, upstream_model: llama, priority: 2,
         input_usd_per_mtok: "0.000001", output_usd_per_mtok: 12345678.123456}
      - {provider: openai-main, upstream_model: gpt-4o-mini, input_usd_per_mtok: "0.15", output_usd_per_mtok: "0.60",
         cached_input_usd_per_mtok: "0.075", cache_write_usd_per_mtok: "0.1875", priority: 1}
      - {provider: openai-main, upstream_model: gpt-4o-mini-2024, input_usd_per_mtok: 10, output_usd_per_mtok: "0",
         priority: 2, weight: 5, enabled: false}
  - {name: unserved, policy: spread, enabled: false, deployments: []}
tenants:
  - {slug: globex, name: "Globex $${not-a-variable-either}", active: false}
  - {slug: acme, name: Acme Corp}
"""


@pytest.fixture
def empty_database() -> None:
    """Rows committed by live-gateway tests share this database; the test's transaction hides them
    by deleting them, and its rollback brings them back."""
    delete_all_configuration()


@pytest.fixture(autouse=True)
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_KEY_FOR_TEST", SECRET)


def test_it_round_trips_through_an_empty_database(
    empty_database: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_text(tmp_path, CONFIG)
    exported = export()
    delete_all_configuration()
    monkeypatch.setenv("OPENAI_MAIN_API_KEY", SECRET)

    output = apply_text(tmp_path, exported)

    assert "providers: 2 created" in output
    assert export() == exported
    assert Provider.objects.get(name="openai-main").api_key() == SECRET
    assert Provider.objects.get(name="openai-main").extra_headers["X-Literal"] == "${NOT_A_VARIABLE}"
    assert Tenant.objects.get(slug="globex").name == "Globex ${not-a-variable-either}"


def test_it_exports_no_secret(empty_database: None, tmp_path: Path) -> None:
    apply_text(tmp_path, CONFIG)
    stored = Provider.objects.get(name="openai-main").api_key_encrypted

    exported = export()

    assert SECRET not in exported
    assert stored not in exported
    # vllm-local has no key, so it gets no placeholder.
    assert [line.strip() for line in exported.splitlines() if line.strip().startswith("api_key:")] == [
        "api_key: ${OPENAI_MAIN_API_KEY}"
    ]
    assert "# Set before applying: OPENAI_MAIN_API_KEY" in exported.split("providers:")[0]


def test_it_exports_prices_exactly_as_decimal_strings(empty_database: None, tmp_path: Path) -> None:
    apply_text(tmp_path, CONFIG)

    exported = export()

    assert "input_usd_per_mtok: '0.000001'" in exported
    assert "output_usd_per_mtok: '12345678.123456'" in exported
    assert "cached_input_usd_per_mtok: '0.075'" in exported
    assert "cache_write_usd_per_mtok: '0.1875'" in exported
    assert exported.count("cache_write_usd_per_mtok") == 1  # a blank price stays blank, not the input price
    assert "input_usd_per_mtok: '10.00'" in exported
    assert "output_usd_per_mtok: '0.00'" in exported
    row = Deployment.objects.get(upstream_model="llama")
    assert row.output_usd_per_mtok == Decimal("12345678.123456")


def test_it_lists_deployments_in_the_order_failover_tries_them(empty_database: None, tmp_path: Path) -> None:
    apply_text(tmp_path, CONFIG)

    exported = export()

    order = [line.split(": ")[1] for line in exported.splitlines() if "upstream_model:" in line]
    assert order == ["gpt-4o-mini", "llama", "gpt-4o-mini-2024"]


def test_it_writes_to_a_file_with_output(empty_database: None, tmp_path: Path) -> None:
    apply_text(tmp_path, CONFIG)
    target = tmp_path / "exported.yaml"

    call_command("edge_export", "--output", str(target), stdout=StringIO(), stderr=StringIO())

    assert target.read_text() == export()
