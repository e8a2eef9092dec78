"""Routing admin: models with their deployments inline, and lists that cost the same few queries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.routing import table
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from tests.admin.conftest import count_queries
from tests.factories import make_provider, make_route, unique

pytestmark = pytest.mark.django_db


def inline_management(total: int, initial: int = 0) -> dict[str, str]:
    return {"deployments-TOTAL_FORMS": str(total), "deployments-INITIAL_FORMS": str(initial),
            "deployments-MIN_NUM_FORMS": "0", "deployments-MAX_NUM_FORMS": "1000"}


def test_it_adds_a_model_with_its_deployments(admin_client):
    policy = RoutingPolicy.objects.create(name=unique("policy"))
    primary, backup = make_provider("https://a.example.com/v1"), make_provider("https://b.example.com/v1")
    name = unique("model")
    deployment = {"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": "0.15", "output_usd_per_mtok": "0.6",
                  "cached_input_usd_per_mtok": "", "cache_write_usd_per_mtok": "", "weight": "1", "enabled": "on"}

    response = admin_client.post(reverse("admin:routing_publicmodel_add"), {
        "name": name, "policy": policy.pk, "enabled": "on", **inline_management(2),
        **{f"deployments-0-{field}": value for field, value in deployment.items()},
        "deployments-0-provider": primary.pk, "deployments-0-priority": "1",
        **{f"deployments-1-{field}": value for field, value in deployment.items()},
        "deployments-1-provider": backup.pk, "deployments-1-priority": "2",
        "deployments-1-cached_input_usd_per_mtok": "0.075", "deployments-1-cache_write_usd_per_mtok": "0.1875",
        "deployments-1-max_output_tokens": "2048",
    })

    assert response.status_code == 302
    deployments = list(Deployment.objects.filter(model__name=name).order_by("priority"))
    assert [d.provider for d in deployments] == [primary, backup]
    assert deployments[1].cached_input_usd_per_mtok == Decimal("0.075")
    assert [d.cache_write_usd_per_mtok for d in deployments] == [None, Decimal("0.1875")]
    assert [d.max_output_tokens for d in deployments] == [None, 2048]
    assert deployments[0].input_usd_per_mtok == Decimal("0.15")


def test_it_shows_how_many_deployments_each_model_has(admin_client, fake_v1):
    route = make_route(fake_v1)
    Deployment.objects.create(model=route.model, provider=make_provider(fake_v1), upstream_model="other",
                              input_usd_per_mtok=1, output_usd_per_mtok=2)

    page = admin_client.get(reverse("admin:routing_publicmodel_changelist"), {"q": route.model.name})

    assert '<td class="field-deployment_count">2</td>' in page.content.decode()


def test_it_makes_this_process_reload_routes_once_an_edit_commits(
    admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    reloads = []
    monkeypatch.setattr(table.routing_tables, "invalidate", lambda: reloads.append(True))
    policy = RoutingPolicy.objects.create(name=unique("policy"))
    model = PublicModel.objects.create(name=unique("model"), policy=policy)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:routing_publicmodel_change", args=[model.pk]),
                          {"name": model.name, "policy": policy.pk, **inline_management(0)})
        assert reloads == []  # not before the transaction commits

    assert reloads


@pytest.mark.parametrize("url_name", [
    "admin:routing_publicmodel_changelist", "admin:routing_deployment_changelist",
    "admin:routing_routingpolicy_changelist",
])
def test_it_lists_in_a_constant_number_of_queries(admin_client, django_assert_max_num_queries, fake_v1, url_name):
    url = reverse(url_name)
    make_route(fake_v1)
    few = count_queries(lambda: admin_client.get(url))
    for _ in range(8):
        make_route(fake_v1)

    with django_assert_max_num_queries(few):
        assert admin_client.get(url).status_code == 200


def _publish_live_state(deployment: Deployment, *, state: str, successes: float, failures: float,
                        latency_ms: float) -> None:
    """What gateway processes write to Redis: a breaker transition and one process's health counters."""
    import time

    import orjson

    from apps.routing.breakers import SharedBreakerState
    from apps.routing.shared_state import health_key, write_breaker_state
    from edge_project.redis_clients import sync_redis

    now = time.time()
    write_breaker_state(deployment.pk, SharedBreakerState(state, now, now))
    client = sync_redis()
    assert client is not None, "these tests need REDIS_URL"
    client.hset(health_key(deployment.pk), "another-host-123",
                orjson.dumps([successes, failures, latency_ms, None, now]))


def test_it_lists_each_deployments_cache_write_price_next_to_its_other_prices(admin_client, fake_v1):
    route = make_route(fake_v1, cached_price="0.3", cache_write_price="3.75")

    page = admin_client.get(reverse("admin:routing_deployment_changelist"), {"q": route.model.name}).content.decode()

    assert '<td class="field-cached_input_usd_per_mtok">0.300000</td>' in page
    assert '<td class="field-cache_write_usd_per_mtok">3.750000</td>' in page


def test_it_shows_each_deployments_breaker_success_rate_and_latency_as_gateways_see_them(admin_client, fake_v1):
    route = make_route(fake_v1)
    _publish_live_state(route.deployment, state="open", successes=90, failures=10, latency_ms=31.4)

    page = admin_client.get(reverse("admin:routing_deployment_changelist"), {"q": route.model.name}).content.decode()

    assert '<td class="field-breaker_state">open</td>' in page
    assert '<td class="field-success_rate">90.0% of 100</td>' in page
    assert '<td class="field-latency">31 ms</td>' in page


def test_it_lists_deployments_when_a_health_entry_in_redis_is_malformed(admin_client, fake_v1):
    route = make_route(fake_v1)
    _publish_live_state(route.deployment, state="closed", successes=3, failures=1, latency_ms=12)
    from apps.routing.shared_state import health_key
    from edge_project.redis_clients import sync_redis

    client = sync_redis()
    assert client is not None
    client.hset(health_key(route.deployment.pk), "a-broken-writer", b"[1, 2]")

    response = admin_client.get(reverse("admin:routing_deployment_changelist"), {"q": route.model.name})

    assert response.status_code == 200 and '<td class="field-success_rate">75.0% of 4</td>' in response.content.decode()


def test_it_shows_the_live_state_in_the_models_deployment_inline(admin_client, fake_v1):
    route = make_route(fake_v1)
    _publish_live_state(route.deployment, state="closed", successes=3, failures=1, latency_ms=12)

    page = admin_client.get(reverse("admin:routing_publicmodel_change", args=[route.model.pk])).content.decode()

    assert "75.0% of 4" in page and "12 ms" in page


@pytest.mark.parametrize(("action", "override"), [
    ("force_breaker_open", "open"), ("force_breaker_closed", "closed"), ("breaker_automatic", "auto"),
])
def test_it_forces_a_breaker_for_every_process_through_the_routing_table(admin_client, fake_v1, action, override):
    route = make_route(fake_v1)
    if override == "auto":
        Deployment.objects.filter(pk=route.deployment.pk).update(breaker_override="open")

    admin_client.post(reverse("admin:routing_deployment_changelist"),
                      {"action": action, "_selected_action": [route.deployment.pk]})

    assert Deployment.objects.get(pk=route.deployment.pk).breaker_override == override
    routes = table.load_routing_table().routes
    assert routes[route.model.name].targets[0].breaker_override == override


def test_it_closes_an_open_breaker_now_for_every_process(admin_client, fake_v1):
    route = make_route(fake_v1)
    _publish_live_state(route.deployment, state="open", successes=0, failures=5, latency_ms=1)

    admin_client.post(reverse("admin:routing_deployment_changelist"),
                      {"action": "close_breaker_now", "_selected_action": [route.deployment.pk]})

    page = admin_client.get(reverse("admin:routing_deployment_changelist"), {"q": route.model.name}).content.decode()
    assert '<td class="field-breaker_state">closed</td>' in page
