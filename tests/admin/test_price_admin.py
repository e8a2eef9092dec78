"""Prices in admin: an edit is a new version (now, or from a moment given), history stays, and a past
period is re-rated from the ledger's page with adjustment rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.urls import reverse

from apps.billing.models import LedgerEntry
from apps.routing.models import Deployment
from apps.routing.table import query_routing_table
from tests.admin.conftest import LEDGER_RANGE, make_entry
from tests.factories import make_key, make_route, make_tenant

pytestmark = pytest.mark.django_db


def deployment_form(deployment: Deployment, **changes: str) -> dict[str, Any]:
    versions = str(deployment.price_versions.count())
    return {
        "model": deployment.model_id, "provider": deployment.provider_id, "upstream_model": deployment.upstream_model,
        "input_usd_per_mtok": str(deployment.input_usd_per_mtok),
        "output_usd_per_mtok": str(deployment.output_usd_per_mtok),
        "cached_input_usd_per_mtok": "", "cache_write_usd_per_mtok": "", "max_output_tokens": "", "priority": "1",
        "weight": "1", "enabled": "on", "breaker_override": "auto", "prices_effective_from_0": "",
        "prices_effective_from_1": "", "price_note": "", "price_versions-TOTAL_FORMS": versions,
        "price_versions-INITIAL_FORMS": versions, "price_versions-MIN_NUM_FORMS": "0",
        "price_versions-MAX_NUM_FORMS": "1000", **changes,
    }


def current_prices(deployment: Deployment) -> tuple[Decimal, Decimal]:
    [target] = [t for route in query_routing_table().routes.values() for t in route.targets
                if t.deployment_id == deployment.pk]
    return target.prices.input_usd_per_mtok, target.prices.output_usd_per_mtok


def test_editing_a_deployments_prices_adds_a_version_and_keeps_the_old_one(admin_client):
    deployment = make_route("https://a.example.com/v1", input_price="0.15", output_price="0.60").deployment
    url = reverse("admin:routing_deployment_change", args=[deployment.pk])

    response = admin_client.post(url, deployment_form(deployment, input_usd_per_mtok="0.20", price_note="list price"))
    admin_client.post(url, deployment_form(Deployment.objects.get(pk=deployment.pk), priority="2"))

    assert response.status_code == 302
    old, new = deployment.price_versions.order_by("effective_from")
    assert (old.input_usd_per_mtok, new.input_usd_per_mtok, new.note) == (Decimal("0.15"), Decimal("0.20"),
                                                                         "list price")
    assert current_prices(deployment) == (Decimal("0.20"), Decimal("0.60"))
    assert Deployment.objects.get(pk=deployment.pk).priority == 2  # and no third version for it
    assert "price history (newest first)" in admin_client.get(url).content.decode().lower()


def test_prices_effective_later_leave_the_current_ones_in_force_until_then(admin_client):
    deployment = make_route("https://a.example.com/v1", input_price="1", output_price="2").deployment
    later = datetime.now(UTC) + timedelta(days=3)

    admin_client.post(reverse("admin:routing_deployment_change", args=[deployment.pk]), deployment_form(
        deployment, input_usd_per_mtok="3", prices_effective_from_0=later.strftime("%Y-%m-%d"),
        prices_effective_from_1=later.strftime("%H:%M:%S")))

    assert current_prices(deployment) == (Decimal("1"), Decimal("2"))
    [target] = [t for route in query_routing_table().routes.values() for t in route.targets
                if t.deployment_id == deployment.pk]
    assert target.prices_at(later + timedelta(seconds=1)).input_usd_per_mtok == Decimal("3")


def test_the_ledgers_rerate_action_prefills_the_period_and_writes_adjustments(admin_client):
    deployment = make_route("https://a.example.com/v1", input_price="1", output_price="1").deployment
    tenant = make_tenant()
    entries = [make_entry(tenant, make_key(tenant)[0], deployment_id=deployment.pk, prompt_tokens=1000,
                          completion_tokens=1000, cost_usd=Decimal("0.002")) for _ in range(2)]
    changelist = reverse("admin:billing_ledgerentry_changelist") + "?" + urlencode(LEDGER_RANGE)  # the rows' dates

    chosen = admin_client.post(changelist, {"action": "rerate_selected", "_selected_action": [e.pk for e in entries]})
    initial = {name: values[0] for name, values in parse_qs(urlparse(chosen["Location"]).query).items()}
    page = admin_client.get(chosen["Location"])
    done = admin_client.post(chosen["Location"], {**initial, "input_usd_per_mtok": "2", "output_usd_per_mtok": "2",
                                                  "note": "contract price"})

    assert initial["deployment"] == str(deployment.pk) and page.status_code == 200
    assert done.status_code == 302, done.content.decode()
    adjustments = LedgerEntry.objects.filter(adjusts__in=entries)
    assert sorted(a.cost_usd for a in adjustments) == [Decimal("0.002"), Decimal("0.002")]
    assert LedgerEntry.objects.filter(pk__in=[e.pk for e in entries], cost_usd=Decimal("0.002")).count() == 2


def test_the_rerate_form_refuses_prices_and_a_version_at_once(admin_client):
    deployment = make_route("https://a.example.com/v1").deployment
    version = deployment.price_versions.get()

    page = admin_client.post(reverse("admin:billing_ledgerentry_rerate"), {
        "deployment": deployment.pk, "start": "2026-11-01 00:00:00", "end": "2026-11-02 00:00:00",
        "price_version": version.pk, "input_usd_per_mtok": "1", "output_usd_per_mtok": "1", "note": "x"})

    assert page.status_code == 200 and "not both" in page.content.decode()


def test_a_price_edited_in_a_models_deployment_list_is_a_new_version_too(admin_client):
    route = make_route("https://a.example.com/v1", input_price="0.15", output_price="0.60")
    deployment = route.deployment
    row = {"id": deployment.pk, "model": route.model.pk, "provider": deployment.provider_id,
           "upstream_model": deployment.upstream_model, "input_usd_per_mtok": "0.15", "output_usd_per_mtok": "0.9",
           "cached_input_usd_per_mtok": "", "cache_write_usd_per_mtok": "", "max_output_tokens": "",
           "priority": "1", "weight": "1", "enabled": "on"}

    response = admin_client.post(reverse("admin:routing_publicmodel_change", args=[route.model.pk]), {
        "name": route.model.name, "policy": route.model.policy_id, "enabled": "on",
        "deployments-TOTAL_FORMS": "1", "deployments-INITIAL_FORMS": "1", "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000", **{f"deployments-0-{name}": value for name, value in row.items()},
    })

    assert response.status_code == 302
    assert [v.output_usd_per_mtok for v in deployment.price_versions.order_by("effective_from")] == [
        Decimal("0.60"), Decimal("0.9")]
    assert current_prices(deployment) == (Decimal("0.15"), Decimal("0.9"))
