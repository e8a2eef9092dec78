"""Purging by tenant or by model reaches every gateway process (Redis pub/sub), and admin offers it."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from apps.billing.models import LedgerEntry
from apps.proxy.cache.purge import generations_key, purge_model, purge_tenant
from apps.routing.models import PublicModel
from edge_project.redis_clients import sync_redis
from tests.cache.conftest import CACHE_TTL_S
from tests.conftest import wait_until_served
from tests.factories import make_key, make_route, make_tenant, unique
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served
from tests.harness.waiting import wait_until


def on(gateway: GatewayProcess, served: Served) -> Served:
    return Served(gateway, served.route, served.tenant, served.key, served.raw_key)


def cache_status(served: Served, text: str = "hello there friend") -> str:
    return str(served.post(served.chat_body(text)).headers["x-edge-cache"])


@pytest.fixture
def cached_on_both(cached: Served, second_gateway: GatewayProcess) -> tuple[Served, Served]:
    """The same model and key on both gateways, each with the answer in its L1."""
    elsewhere = on(second_gateway, cached)
    wait_until_served(second_gateway.url, cached.raw_key, cached.model)
    assert cache_status(cached) == "miss"
    wait_until(lambda: cache_status(elsewhere) == "hit-l2", timeout_s=2, what="the answer in L2")
    assert cache_status(cached) == cache_status(elsewhere) == "hit-l1"
    return cached, elsewhere


def answer_id(served: Served) -> str:
    return str(served.post(served.chat_body()).json()["id"])


def wait_for_fresh_answer(served: Served, purged_answer: str) -> None:
    wait_until(lambda: answer_id(served) != purged_answer, timeout_s=2, what=f"purge seen by {served.gateway.url}")


@pytest.mark.usefixtures("live_db")
def test_purging_a_tenant_empties_its_cache_in_every_process(cached_on_both: tuple[Served, Served]):
    here, there = cached_on_both
    purged_answer = answer_id(here)
    bystander = make_tenant()
    _, bystander_key = make_key(bystander)
    bystanding = Served(here.gateway, here.route, bystander, here.key, bystander_key)
    kept_answer = answer_id(bystanding)

    assert purge_tenant(tenant_id=here.tenant.pk) is True

    # Each gateway hears of it on the channel within moments, and from then on answers afresh.
    for served in (here, there):
        wait_for_fresh_answer(served, purged_answer)
    assert purged_answer not in (answer_id(here), answer_id(there))
    assert answer_id(bystanding) == answer_id(on(there.gateway, bystanding)) == kept_answer


@pytest.mark.usefixtures("live_db")
def test_purging_a_model_empties_its_cache_in_every_process(cached_on_both: tuple[Served, Served]):
    here, there = cached_on_both
    purged_answer = answer_id(here)

    assert purge_model(model=here.model) is True

    for served in (here, there):
        wait_for_fresh_answer(served, purged_answer)
    assert purged_answer not in (answer_id(here), answer_id(there))


@pytest.mark.usefixtures("live_db")
def test_purging_a_pattern_model_empties_the_cache_of_every_name_it_serves(gateway: GatewayProcess, fake_v1: str):
    prefix = unique("claude")
    with transaction.atomic():
        pattern = make_route(fake_v1, name=f"{prefix}-*", upstream_model="*", cache_ttl_s=CACHE_TTL_S)
    tenant = make_tenant()
    key, raw_key = make_key(tenant)
    served = Served(gateway, pattern, tenant, key, raw_key)
    asked = served.chat_body() | {"model": f"{prefix}-3-haiku"}  # a name only the pattern serves

    def answer_id() -> str:
        return str(served.post(asked).json()["id"])

    wait_until(lambda: served.post(asked).status_code == 200, timeout_s=5, what="the pattern model served")
    purged_answer = answer_id()
    assert served.post(asked).headers["x-edge-cache"] == "hit-l1"

    assert purge_model(model=f"{prefix}-*") is True  # what admin's action does for the selected model

    wait_until(lambda: answer_id() != purged_answer, timeout_s=2, what="the pattern's purge")


@pytest.mark.django_db
def test_admin_purges_selected_tenants_everywhere(admin_client):
    tenant = make_tenant()
    redis = sync_redis()
    assert redis is not None
    before = int(redis.hget(generations_key(), f"tenant:{tenant.pk}") or 0)

    response = admin_client.post(
        reverse("admin:billing_tenant_changelist"),
        {"action": "purge_cached_responses", "_selected_action": [tenant.pk]}, follow=True,
    )

    assert int(redis.hget(generations_key(), f"tenant:{tenant.pk}") or 0) == before + 1
    assert "in every gateway process" in response.content.decode()


@pytest.mark.django_db
def test_admin_purges_selected_models_everywhere(admin_client, fake_v1):
    from tests.factories import make_route

    model: PublicModel = make_route(fake_v1).model
    redis = sync_redis()
    assert redis is not None

    response = admin_client.post(
        reverse("admin:routing_publicmodel_changelist"),
        {"action": "purge_cached_responses", "_selected_action": [model.pk]}, follow=True,
    )

    assert int(redis.hget(generations_key(), f"model:{model.name}") or 0) == 1
    assert "in every gateway process" in response.content.decode()


@pytest.mark.django_db
def test_the_ledger_banner_shows_what_the_cache_avoided(admin_client):
    from decimal import Decimal

    from tests.admin.conftest import LEDGER_RANGE, make_entry
    from tests.harness.rollups import rebuild_rollups

    tenant = make_tenant()
    make_entry(tenant, cache_status=LedgerEntry.CacheStatus.MISS, cost_usd=Decimal("0.0025"))
    make_entry(tenant, cache_status=LedgerEntry.CacheStatus.HIT_L1, cost_usd=Decimal(0),
               cost_avoided_usd=Decimal("0.0025"))
    make_entry(tenant, cache_status=LedgerEntry.CacheStatus.HIT_L2, cost_usd=Decimal(0),
               cost_avoided_usd=Decimal("0.0025"))

    rebuild_rollups()  # the list's totals are the rollups'

    page = admin_client.get(reverse("admin:billing_ledgerentry_changelist"),
                            {**LEDGER_RANGE, "tenant__id__exact": tenant.pk})

    assert page.context["filtered_cost"] == "0.0025000000"
    assert page.context["filtered_cost_avoided"] == "0.0050000000"
    assert "0.0050000000 USD" in page.content.decode()
