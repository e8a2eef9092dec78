"""Rate limits and budgets of tenants and keys, edited in admin and shown in its lists."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from apps.billing.models import ApiKey, Tenant
from tests.factories import make_key, make_tenant

pytestmark = pytest.mark.django_db

TENANT_LIMITS = {
    "rpm": "60", "tpm": "100000", "max_parallel": "4", "budget_usd": "100.00", "budget_period": "month",
    "timezone": "Europe/Berlin",
}
KEY_LIMITS = {"rpm": "10", "tpm": "", "max_parallel": "2", "budget_usd": "12.5", "budget_period": "day"}


def tenant_form(tenant: Tenant, **changes: str) -> dict[str, Any]:
    return {"slug": tenant.slug, "name": tenant.name, "is_active": "on", **TENANT_LIMITS, **changes}


def key_form(**changes: str) -> dict[str, Any]:
    return {"name": "ci", "expires_at_0": "", "expires_at_1": "", **KEY_LIMITS, **changes}


def limits_of(row: Tenant | ApiKey) -> tuple[object, ...]:
    row.refresh_from_db()
    return (row.rpm, row.tpm, row.max_parallel, row.budget_usd, row.budget_period)


def test_the_tenant_page_edits_its_limits_budget_and_time_zone(admin_client):
    tenant = make_tenant()
    url = reverse("admin:billing_tenant_change", args=[tenant.pk])

    page = admin_client.get(url).content.decode()
    response = admin_client.post(url, tenant_form(tenant))

    assert "Limits and budget" in page and 'name="budget_usd"' in page and 'name="timezone"' in page
    assert response.status_code == 302
    assert limits_of(tenant) == (60, 100_000, 4, Decimal("100.00"), "month")
    assert tenant.timezone == "Europe/Berlin"


def test_blank_tenant_limits_are_unlimited(admin_client):
    tenant = make_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(rpm=5, budget_usd=Decimal(1))

    admin_client.post(reverse("admin:billing_tenant_change", args=[tenant.pk]),
                      tenant_form(tenant, rpm="", tpm="", max_parallel="", budget_usd=""))

    assert limits_of(tenant) == (None, None, None, None, "month")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("rpm", "0", "Ensure this value is greater than or equal to 1."),
    ("tpm", "-5", "Ensure this value is greater than or equal to 1."),
    ("budget_usd", "-1", "Ensure this value is greater than or equal to 0."),
    ("budget_usd", "0.00000000001", "Ensure that there are no more than 10 decimal places."),
    ("budget_period", "fortnight", "Select a valid choice."),
    ("timezone", "Europe/Berlim", "is not an IANA time zone name"),
])
def test_the_tenant_page_refuses_a_limit_its_column_would_not_hold(admin_client, field, value, message):
    tenant = make_tenant()

    response = admin_client.post(reverse("admin:billing_tenant_change", args=[tenant.pk]),
                                 tenant_form(tenant, **{field: value}))

    assert response.status_code == 200 and message in response.content.decode()
    assert limits_of(tenant) == (None, None, None, None, "month")


def test_the_key_page_edits_the_keys_own_limits_and_budget(admin_client):
    key, _ = make_key(make_tenant())
    url = reverse("admin:billing_apikey_change", args=[key.pk])

    page = admin_client.get(url).content.decode()
    response = admin_client.post(url, key_form())

    assert "Limits and budget" in page and 'name="max_parallel"' in page
    assert response.status_code == 302
    assert limits_of(key) == (10, None, 2, Decimal("12.5"), "day")


def test_the_key_page_refuses_a_negative_budget(admin_client):
    key, _ = make_key(make_tenant())

    response = admin_client.post(reverse("admin:billing_apikey_change", args=[key.pk]), key_form(budget_usd="-3"))

    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0." in response.content.decode()
    assert limits_of(key) == (None, None, None, None, "month")


def test_a_new_key_gets_the_limits_of_the_create_form_and_its_page_says_so(admin_client):
    tenant = make_tenant()

    form = admin_client.get(reverse("admin:billing_apikey_add")).content.decode()
    response = admin_client.post(reverse("admin:billing_apikey_add"), {"tenant": tenant.pk, **KEY_LIMITS})

    assert "Limits and budget" in form and 'name="rpm"' in form and 'min="1"' in form

    key = ApiKey.objects.get(tenant=tenant)
    assert limits_of(key) == (10, None, 2, Decimal("12.5"), "day")
    assert "10 rpm · 2 parallel · $12.50/day" in response.content.decode()


def test_a_new_key_without_a_period_gets_the_default_one(admin_client):
    tenant = make_tenant()

    admin_client.post(reverse("admin:billing_apikey_add"), {"tenant": tenant.pk, "budget_usd": "5"})

    assert limits_of(ApiKey.objects.get(tenant=tenant)) == (None, None, None, Decimal("5"), "month")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_parallel", "0", "Ensure this value is greater than or equal to 1."),
    ("budget_usd", "-1", "Ensure this value is greater than or equal to 0."),  # a check only the model makes
    ("budget_usd", "1.00000000001", "Ensure that there are no more than 10 decimal places."),
])
def test_the_create_form_refuses_a_limit_its_column_would_not_hold_and_issues_no_key(
    admin_client, field, value, message
):
    tenant = make_tenant()

    response = admin_client.post(reverse("admin:billing_apikey_add"), {"tenant": tenant.pk, field: value})

    page = response.content.decode()
    assert response.status_code == 200 and message in page and 'id="raw-key"' not in page
    assert not ApiKey.objects.filter(tenant=tenant).exists()


def test_the_lists_show_limits_compactly(admin_client):
    tenant = make_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(rpm=60, tpm=100_000, max_parallel=4, budget_usd=Decimal("100"))
    limited, _ = make_key(tenant)
    ApiKey.objects.filter(pk=limited.pk).update(tpm=2_000_000, budget_usd=Decimal("0.5"), budget_period="total")
    unlimited, _ = make_key(tenant)

    tenants = admin_client.get(reverse("admin:billing_tenant_changelist"), {"q": tenant.slug}).content.decode()
    keys = admin_client.get(reverse("admin:billing_apikey_changelist"), {"q": tenant.slug}).content.decode()

    assert '<td class="field-limits">60 rpm · 100k tpm · 4 parallel · $100/month</td>' in tenants
    rows = {key.prefix: keys.split(f">{key.prefix}<")[1].split("</tr>")[0] for key in (limited, unlimited)}
    assert '<td class="field-limits">2M tpm · $0.50 total</td>' in rows[limited.prefix]
    assert '<td class="field-limits">unlimited</td>' in rows[unlimited.prefix]
