"""Tenants' rate limits and budgets, and deployments' output caps, in config files: applied, refused
with the entry and field named, and exported so that applying the export changes nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from apps.billing.models import Tenant
from apps.routing.models import Deployment
from tests.harness.config_commands import apply_text, delete_all_configuration, export

pytestmark = pytest.mark.django_db

# Names start with "lim-": the session database may hold rows committed by live-gateway tests.
CONFIG = """\
providers:
  - {name: lim-openai, kind: openai, base_url: "https://api.openai.com/v1"}
routing_policies:
  - {name: lim-default, strategy: failover}
models:
  - name: lim-chat
    policy: lim-default
    deployments:
      - {provider: lim-openai, upstream_model: gpt-4o-mini, input_usd_per_mtok: "0.15", output_usd_per_mtok: "0.60",
         max_output_tokens: 2048}
      - {provider: lim-openai, upstream_model: gpt-4o, input_usd_per_mtok: "2.50", output_usd_per_mtok: "10.00",
         priority: 2}
tenants:
  - slug: lim-acme
    name: Acme
    limits: {rpm: 60, tpm: 100000, max_parallel: 4}
    budget: {usd: "100.00", period: week, timezone: Europe/Berlin}
  - slug: lim-globex
    name: Globex
    limits: {tpm: 5000}
    budget: {usd: "0.0000000001"}
  - slug: lim-initech
    name: Initech
    budget: {timezone: America/New_York}
  - {slug: lim-plain, name: Plain}
"""


def limits_of(slug: str) -> tuple[object, ...]:
    tenant = Tenant.objects.get(slug=slug)
    return (tenant.rpm, tenant.tpm, tenant.max_parallel, tenant.budget_usd, tenant.budget_period, tenant.timezone)


def apply_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(CommandError) as raised:
        apply_text(tmp_path, text)
    return str(raised.value)


def test_it_applies_limits_budgets_and_output_caps(tmp_path: Path):
    apply_text(tmp_path, CONFIG)

    assert limits_of("lim-acme") == (60, 100000, 4, Decimal("100.00"), "week", "Europe/Berlin")
    assert limits_of("lim-globex") == (None, 5000, None, Decimal("0.0000000001"), "month", "UTC")
    assert limits_of("lim-initech") == (None, None, None, None, "month", "America/New_York")
    assert limits_of("lim-plain") == (None, None, None, None, "month", "UTC")
    caps = dict(Deployment.objects.filter(model__name="lim-chat").values_list("upstream_model", "max_output_tokens"))
    assert caps == {"gpt-4o-mini": 2048, "gpt-4o": None}


def test_limits_left_out_of_the_file_become_unlimited_again(tmp_path: Path):
    apply_text(tmp_path, CONFIG)

    output = apply_text(tmp_path, "tenants:\n  - {slug: lim-acme, name: Acme}\n")

    assert "tenants: 0 created, 1 updated, 0 unchanged" in output
    assert limits_of("lim-acme") == (None, None, None, None, "month", "UTC")


def test_applying_the_same_limits_again_changes_nothing(tmp_path: Path):
    apply_text(tmp_path, CONFIG)

    output = apply_text(tmp_path, CONFIG.replace('"100.00"', "100"))  # the same amount, written otherwise

    assert "tenants: 0 created, 0 updated, 4 unchanged" in output
    assert "deployments: 0 created, 0 updated, 2 unchanged, 0 removed" in output


ACME = "tenants[0] (lim-acme)"
INVALID = [
    ("negative rpm", ("rpm: 60", "rpm: -5"), f"{ACME}.limits.rpm: must be at least 1, got -5"),
    ("rpm of zero", ("rpm: 60", "rpm: 0"), f"{ACME}.limits.rpm: must be at least 1, got 0"),
    ("rpm as text", ("rpm: 60", "rpm: sixty"), f"{ACME}.limits.rpm: expected a whole number, got a string"),
    ("tpm beyond the column", ("tpm: 100000", "tpm: 2147483648"),
     f"{ACME}.limits.tpm: must be at most 2147483647, got 2147483648"),
    ("misspelt limit", ("max_parallel: 4", "max_paralel: 4"),
     f"{ACME}.limits.max_paralel: unknown field 'max_paralel' (did you mean 'max_parallel'?)"),
    ("limits not a mapping", ("limits: {tpm: 5000}", "limits: 5000"),
     "tenants[1] (lim-globex).limits: expected a mapping, got 5000"),
    ("budget not a number", ('usd: "100.00"', 'usd: "abc"'), f"{ACME}.budget.usd: 'abc' is not a decimal number"),
    ("eleven decimal places", ('usd: "100.00"', 'usd: "0.00000000001"'),
     f"{ACME}.budget.usd: at most 10 decimal places, got '0.00000000001'"),
    ("negative budget", ('usd: "100.00"', "usd: -1"), f"{ACME}.budget.usd: must be a non-negative decimal, got -1"),
    ("budget beyond the column", ('usd: "100.00"', 'usd: "10000000000"'),
     f"{ACME}.budget.usd: must be below 10000000000 USD, got '10000000000'"),
    ("unknown period", ("period: week", "period: weekly"),
     f"{ACME}.budget.period: unknown budget period 'weekly' (did you mean 'week'?)"),
    ("period without an amount", ("{timezone: America/New_York}", "{period: day}"),
     "tenants[2] (lim-initech).budget.period: has no effect without usd"),
    ("unknown time zone", ("Europe/Berlin", "Europe/Berlim"),
     f"{ACME}.budget.timezone: 'Europe/Berlim' is not an IANA time zone name"),
    ("output cap of zero", ("max_output_tokens: 2048", "max_output_tokens: 0"),
     "models[0] (lim-chat).deployments[0].max_output_tokens: must be at least 1, got 0"),
    ("fractional output cap", ("max_output_tokens: 2048", "max_output_tokens: 20.5"),
     "models[0] (lim-chat).deployments[0].max_output_tokens: expected a whole number, got 20.5"),
]


@pytest.mark.parametrize(("change", "expected"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_it_names_the_entry_and_field_of_a_bad_limit_and_writes_nothing(
    tmp_path: Path, change: tuple[str, str], expected: str
):
    assert change[0] in CONFIG

    error = apply_error(tmp_path, CONFIG.replace(*change))

    assert expected in error
    assert "1 error, nothing was applied" in error
    assert not Tenant.objects.filter(slug__startswith="lim-").exists()
    assert not Deployment.objects.filter(model__name="lim-chat").exists()


def test_it_round_trips_limits_budgets_and_output_caps_through_an_empty_database(tmp_path: Path):
    delete_all_configuration()  # rows committed by live-gateway tests; the test's rollback restores them
    apply_text(tmp_path, CONFIG)
    exported = export()
    delete_all_configuration()

    apply_text(tmp_path, exported)

    assert export() == exported
    assert limits_of("lim-acme") == (60, 100000, 4, Decimal("100.00"), "week", "Europe/Berlin")
    assert limits_of("lim-initech") == (None, None, None, None, "month", "America/New_York")
    assert "    limits:\n      rpm: 60\n      tpm: 100000\n      max_parallel: 4\n" in exported
    assert "    budget:\n      usd: '100.00'\n      period: week\n      timezone: Europe/Berlin\n" in exported
    assert "    limits:\n      tpm: 5000\n    budget:\n      usd: '0.0000000001'\n" in exported
    assert "    budget:\n      timezone: America/New_York\n" in exported
    assert exported.count("max_output_tokens: 2048") == 1 and exported.count("max_output_tokens") == 1
    plain = exported.split("slug: lim-plain")[1]
    assert "limits" not in plain and "budget" not in plain  # unlimited: nothing written
