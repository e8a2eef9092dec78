"""`manage.py edge_key`: issuing, listing and revoking gateway keys from a terminal or a script."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from apps.billing.keys import hash_key
from apps.billing.models import ApiKey, Tenant
from apps.billing.services import revoke_api_key
from tests.factories import make_key, make_tenant

pytestmark = pytest.mark.django_db


def edge_key(*args: str) -> str:
    out = StringIO()
    call_command("edge_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_prints_a_working_key_alone_on_the_last_line() -> None:
    tenant = make_tenant()

    output = edge_key("create", "--tenant", tenant.slug, "--name", "billing-service")

    raw = output.splitlines()[-1]
    key = ApiKey.objects.active().get(key_hash=hash_key(raw))  # what the gateway looks a bearer token up by
    assert key.tenant == tenant
    assert key.name == "billing-service"
    assert raw.startswith(key.prefix)
    assert output.count(raw) == 1
    assert f"prefix:  {key.prefix}" in output


def test_it_stores_allowed_models_and_expiry() -> None:
    tenant = make_tenant()

    raw = edge_key("create", "--tenant", tenant.slug, "--models", "gpt-4o, gpt-4o-mini,,gpt-4o",
                   "--expires-days", "7").splitlines()[-1]

    key = ApiKey.objects.get(key_hash=hash_key(raw))
    assert key.allowed_models == ["gpt-4o", "gpt-4o-mini"]
    assert key.expires_at is not None
    assert abs(key.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


def test_it_issues_keys_for_every_model_and_no_expiry_by_default() -> None:
    tenant = make_tenant()

    output = edge_key("create", "--tenant", tenant.slug)

    key = ApiKey.objects.get(key_hash=hash_key(output.splitlines()[-1]))
    assert (key.allowed_models, key.expires_at) == ([], None)
    assert "models:  all" in output
    assert "expires: never" in output


@pytest.mark.parametrize("days", ["0", "-3"])
def test_it_refuses_an_expiry_that_is_not_in_the_future(days: str) -> None:
    tenant = make_tenant()

    with pytest.raises(CommandError, match="--expires-days must be at least 1"):
        edge_key("create", "--tenant", tenant.slug, "--expires-days", days)

    assert not ApiKey.objects.filter(tenant=tenant).exists()


def test_it_refuses_to_create_a_key_for_an_unknown_tenant() -> None:
    with pytest.raises(CommandError, match="no tenant has the slug 'nobody-here'"):
        edge_key("create", "--tenant", "nobody-here")

    assert not Tenant.objects.filter(slug="nobody-here").exists()


def test_it_lists_each_key_with_its_status_and_never_its_hash() -> None:
    tenant = make_tenant()
    active, _ = make_key(tenant, allowed_models=["gpt-4o"])
    expired, _ = make_key(tenant, expires_at=timezone.now() - timedelta(hours=1))
    revoked, _ = make_key(tenant)
    revoke_api_key(key=revoked)
    make_key(make_tenant())  # another tenant's key stays out of the list

    output = edge_key("list", "--tenant", tenant.slug)

    lines = output.splitlines()
    assert lines[0].split() == [
        "prefix", "name", "models", "rpm", "tpm", "parallel", "budget", "created", "expires", "status"
    ]
    status = {line.split()[0]: line.split()[-1] for line in lines[1:]}
    assert status == {active.prefix: "active", expired.prefix: "expired", revoked.prefix: "revoked"}
    assert "gpt-4o" in next(line for line in lines if line.startswith(active.prefix))
    for key in (active, expired, revoked):
        assert key.key_hash not in output


def test_it_says_when_a_tenant_has_no_keys() -> None:
    tenant = make_tenant()

    assert edge_key("list", "--tenant", tenant.slug).strip() == f"tenant {tenant.slug} has no keys"


def test_it_refuses_to_list_an_unknown_tenant() -> None:
    with pytest.raises(CommandError, match="no tenant has the slug 'nobody-here'"):
        edge_key("list", "--tenant", "nobody-here")


def test_it_revokes_a_key_by_its_prefix() -> None:
    key, raw = make_key(make_tenant())
    other, _ = make_key(key.tenant)

    output = edge_key("revoke", key.prefix)

    assert f"revoked key {key.prefix}" in output
    assert not ApiKey.objects.active().filter(key_hash=hash_key(raw)).exists()
    assert ApiKey.objects.active().filter(pk=other.pk).exists()


def test_it_says_so_when_the_key_was_already_revoked() -> None:
    key, _ = make_key(make_tenant())
    revoked_at = revoke_api_key(key=key).revoked_at

    output = edge_key("revoke", key.prefix)

    assert "already revoked" in output
    key.refresh_from_db()
    assert key.revoked_at == revoked_at


def test_it_refuses_to_revoke_an_unknown_prefix() -> None:
    with pytest.raises(CommandError, match="no key has the prefix 'sk-edge-nothere0'"):
        edge_key("revoke", "sk-edge-nothere0")


def test_it_stores_a_keys_limits_and_budget_and_prints_them():
    tenant = make_tenant()

    output = edge_key("create", "--tenant", tenant.slug, "--rpm", "60", "--tpm", "100000", "--max-parallel", "4",
                      "--budget-usd", "100.00", "--budget-period", "week")

    key = ApiKey.objects.get(key_hash=hash_key(output.splitlines()[-1]))
    assert (key.rpm, key.tpm, key.max_parallel) == (60, 100_000, 4)
    assert (key.budget_usd, key.budget_period) == (Decimal("100.00"), "week")
    assert "limits:  60 rpm · 100k tpm · 4 parallel · $100/week" in output


def test_a_key_created_without_limits_is_unlimited_with_a_monthly_period_for_a_budget_added_later():
    tenant = make_tenant()

    output = edge_key("create", "--tenant", tenant.slug, "--budget-usd", "12.5")

    key = ApiKey.objects.get(key_hash=hash_key(output.splitlines()[-1]))
    assert (key.rpm, key.tpm, key.max_parallel, key.budget_usd, key.budget_period) == (
        None, None, None, Decimal("12.5"), "month")
    assert "limits:  $12.50/month" in output


def test_it_lists_each_keys_limits_and_budget():
    tenant = make_tenant()
    limited, _ = make_key(tenant)
    ApiKey.objects.filter(pk=limited.pk).update(rpm=60, tpm=2_500_000, budget_usd=Decimal("0.5"), budget_period="day")
    unlimited, _ = make_key(tenant)

    lines = edge_key("list", "--tenant", tenant.slug).splitlines()

    columns = lines[0].split()
    rows = {line.split()[0]: dict(zip(columns, line.split(), strict=False)) for line in lines[1:]}
    assert [rows[limited.prefix][name] for name in ("rpm", "tpm", "parallel", "budget")] == [
        "60", "2500000", "-", "$0.50/day"]
    assert [rows[unlimited.prefix][name] for name in ("rpm", "tpm", "parallel", "budget")] == ["-", "-", "-", "-"]


@pytest.mark.parametrize(("args", "message"), [
    (["--rpm", "0"], "--rpm: Ensure this value is greater than or equal to 1."),
    (["--tpm", "-100"], "--tpm: Ensure this value is greater than or equal to 1."),
    (["--max-parallel", "2147483648"], "--max-parallel: Ensure this value is less than or equal to 2147483647."),
    (["--rpm", "sixty"], "argument --rpm: invalid int value: 'sixty'"),
    (["--budget-usd", "abc"], "argument --budget-usd: 'abc' is not an amount in USD such as 100.00"),
    (["--budget-usd", "-1"], "--budget-usd: Ensure this value is greater than or equal to 0."),
    (["--budget-usd", "0.00000000001"], "--budget-usd: Ensure that there are no more than 10 decimal places."),
    (["--budget-usd", "10000000000"], "--budget-usd: Ensure that there are no more than 10 digits before"),
    (["--budget-usd", "NaN"], "--budget-usd: “NaN” value must be a decimal number."),
    (["--rpm", "0", "--budget-usd", "-1"], "--rpm: Ensure this value is greater than or equal to 1.\n"
                                           "--budget-usd: Ensure this value is greater than or equal to 0."),
    (["--budget-usd", "5", "--budget-period", "monthly"], "argument --budget-period: invalid choice: 'monthly'"),
    (["--budget-period", "week"], "--budget-period needs --budget-usd"),
])
def test_it_refuses_a_limit_its_column_would_not_hold_and_creates_no_key(args: list[str], message: str):
    tenant = make_tenant()

    with pytest.raises(CommandError) as raised:
        edge_key("create", "--tenant", tenant.slug, *args)

    assert message in str(raised.value)
    assert not ApiKey.objects.filter(tenant=tenant).exists()
