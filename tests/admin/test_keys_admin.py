"""Tenant and API key admin: a key is shown once, at creation, and is revoked rather than deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.billing.keys import hash_key
from apps.billing.models import ApiKey
from apps.routing.models import PublicModel, RoutingPolicy
from tests.admin.conftest import count_queries
from tests.factories import make_key, make_tenant, unique

pytestmark = pytest.mark.django_db
ADD_URL = "admin:billing_apikey_add"


def authenticates(raw_key: str) -> bool:
    """What the gateway's key lookup asks of the database (load_key_info itself closes the test's connection)."""
    return ApiKey.objects.active().filter(key_hash=hash_key(raw_key)).exists()


def test_it_shows_a_new_key_once_and_the_key_authenticates(admin_client):
    tenant = make_tenant()

    response = admin_client.post(reverse(ADD_URL), {"tenant": tenant.pk, "name": "ci runner"})

    page = response.content.decode()
    raw_key = page.split('id="raw-key"')[1].split('value="')[1].split('"')[0]
    key = ApiKey.objects.get(tenant=tenant)
    assert response.status_code == 200 and page.count(raw_key) == 1
    assert "will not be shown again" in page
    assert "no-store" in response["Cache-Control"]
    assert hash_key(raw_key) == key.key_hash and raw_key.startswith(key.prefix)
    assert authenticates(raw_key)
    assert key.name == "ci runner"


def test_it_shows_only_the_prefix_after_creation(admin_client):
    tenant = make_tenant()
    page = admin_client.post(reverse(ADD_URL), {"tenant": tenant.pk}).content.decode()
    raw_key = page.split('value="sk-edge-')[1].split('"')[0]
    key = ApiKey.objects.get(tenant=tenant)

    change_page = admin_client.get(reverse("admin:billing_apikey_change", args=[key.pk])).content.decode()
    list_page = admin_client.get(reverse("admin:billing_apikey_changelist")).content.decode()
    history = admin_client.get(reverse("admin:billing_apikey_history", args=[key.pk])).content.decode()

    for later in (change_page, list_page, history):
        assert raw_key not in later and key.key_hash not in later
    assert key.prefix in change_page and key.prefix in list_page


def test_it_limits_a_new_key_to_the_chosen_models_and_expiry(admin_client):
    tenant = make_tenant()
    policy = RoutingPolicy.objects.create(name=unique("policy"))
    models = [PublicModel.objects.create(name=unique("model"), policy=policy) for _ in range(3)]
    expires = timezone.now() + timedelta(days=30)

    admin_client.post(reverse(ADD_URL), {
        "tenant": tenant.pk, "allowed_models": [models[2].name, models[0].name],
        "expires_at_0": expires.strftime("%Y-%m-%d"), "expires_at_1": "10:30:00",
    })

    key = ApiKey.objects.get(tenant=tenant)
    assert key.allowed_models == sorted([models[0].name, models[2].name])
    assert key.expires_at is not None
    assert key.expires_at.date() == expires.date() and key.expires_at.strftime("%H:%M") == "10:30"


def test_it_refuses_an_expiry_in_the_past(admin_client):
    tenant = make_tenant()

    response = admin_client.post(reverse(ADD_URL), {
        "tenant": tenant.pk, "expires_at_0": "2020-01-01", "expires_at_1": "00:00:00",
    })

    assert response.status_code == 200 and "Choose a time in the future" in response.content.decode()
    assert not ApiKey.objects.filter(tenant=tenant).exists()


def test_it_revokes_the_selected_keys(admin_client):
    tenant = make_tenant()
    (first, first_raw), (second, _), (_, kept_raw) = (make_key(tenant) for _ in range(3))

    response = admin_client.post(reverse("admin:billing_apikey_changelist"), {
        "action": "revoke_selected", "_selected_action": [first.pk, second.pk],
    }, follow=True)

    page = response.content.decode()
    assert "Revoked 2 key(s)" in page
    assert ApiKey.objects.filter(revoked_at__isnull=False, tenant=tenant).count() == 2
    assert not authenticates(first_raw) and authenticates(kept_raw)
    first_row = page.split(f">{first.prefix}<")[1].split("</tr>")[0]
    assert "revoked" in first_row


def test_it_edits_only_name_models_and_expiry(admin_client):
    key, raw_key = make_key(make_tenant())
    other_tenant = make_tenant()

    response = admin_client.post(reverse("admin:billing_apikey_change", args=[key.pk]), {
        "name": "renamed", "tenant": other_tenant.pk, "prefix": "sk-edge-forged", "key_hash": "0" * 64,
        "expires_at_0": "", "expires_at_1": "",
    })

    assert response.status_code == 302
    saved = ApiKey.objects.get(pk=key.pk)
    assert saved.name == "renamed"
    assert (saved.tenant_id, saved.prefix, saved.key_hash) == (key.tenant_id, key.prefix, hash_key(raw_key))


def test_it_keeps_allowed_models_that_are_no_longer_configured(admin_client):
    key, _ = make_key(make_tenant(), allowed_models=["retired-model"])

    page = admin_client.get(reverse("admin:billing_apikey_change", args=[key.pk])).content.decode()
    admin_client.post(reverse("admin:billing_apikey_change", args=[key.pk]), {
        "name": "x", "allowed_models": ["retired-model"], "expires_at_0": "", "expires_at_1": "",
    })

    assert "retired-model (no longer configured)" in page
    assert ApiKey.objects.get(pk=key.pk).allowed_models == ["retired-model"]


def test_it_offers_no_way_to_delete_a_key(admin_client):
    key, _ = make_key(make_tenant())

    delete = admin_client.post(reverse("admin:billing_apikey_delete", args=[key.pk]), {"post": "yes"})
    actions = admin_client.get(reverse("admin:billing_apikey_changelist")).content.decode()

    assert delete.status_code == 403 and ApiKey.objects.filter(pk=key.pk).exists()
    assert "delete_selected" not in actions


def test_it_shows_each_keys_status(admin_client):
    tenant = make_tenant()
    active, _ = make_key(tenant)
    expired, _ = make_key(tenant, expires_at=timezone.now() - timedelta(minutes=1))

    page = admin_client.get(reverse("admin:billing_apikey_changelist") + f"?tenant__id__exact={tenant.pk}")

    html = page.content.decode()
    rows = {key.prefix: html.split(f">{key.prefix}<")[1].split("</tr>")[0] for key in (active, expired)}
    assert '<td class="field-status">active</td>' in rows[active.prefix]
    assert '<td class="field-status">expired</td>' in rows[expired.prefix]


def test_it_finds_keys_by_tenant_slug_and_filters_revoked_ones(admin_client):
    tenant, other = make_tenant(), make_tenant()
    key, _ = make_key(tenant)
    revoked, _ = make_key(tenant)
    revoked.revoked_at = timezone.now()
    revoked.save()
    hidden, _ = make_key(other)
    url = reverse("admin:billing_apikey_changelist")

    found = admin_client.get(url, {"q": tenant.slug}).content.decode()
    not_revoked = admin_client.get(url, {"q": tenant.slug, "revoked": "no"}).content.decode()

    assert key.prefix in found and revoked.prefix in found and hidden.prefix not in found
    assert key.prefix in not_revoked and revoked.prefix not in not_revoked


def test_it_lists_tenants_with_their_key_counts(admin_client):
    tenant = make_tenant()
    for _ in range(3):
        make_key(tenant)

    page = admin_client.get(reverse("admin:billing_tenant_changelist"), {"q": tenant.slug}).content.decode()

    assert f"?tenant__id__exact={tenant.pk}\">3</a>" in page


@pytest.mark.parametrize("url_name", ["admin:billing_apikey_changelist", "admin:billing_tenant_changelist"])
def test_it_lists_in_a_constant_number_of_queries(admin_client, django_assert_max_num_queries, url_name):
    url = reverse(url_name)
    make_key(make_tenant())
    few = count_queries(lambda: admin_client.get(url))
    for _ in range(8):
        tenant = make_tenant()
        make_key(tenant)
        make_key(tenant, expires_at=timezone.now() + timedelta(days=1))

    with django_assert_max_num_queries(few):
        assert admin_client.get(url).status_code == 200
