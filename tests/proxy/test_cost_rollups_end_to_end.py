"""Costs finance can trust, end to end: two gateway processes write every kind of row while adjustments
and a re-rate land in the middle, and the rollups still sum to the ledger exactly; prices change at
the moment their version takes effect."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from apps.billing.models import DailyRollup, HourlyRollup
from apps.billing.rerate import rerate
from apps.billing.rollup_checks import ledger_sums, rebuild_rollups, rollup_sums, verify_rollups
from apps.billing.rollups import HOUR, MEASURES, hour_of
from apps.billing.services import record_adjustment
from apps.routing.price_versions import set_prices
from apps.routing.prices import Prices
from tests.conftest import wait_until_served
from tests.factories import unique
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, wait_for_rows

pytestmark = pytest.mark.slow


def chat(served: Served, gateway: GatewayProcess, content: str, **body: Any) -> str:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30,
                          headers={"Authorization": f"Bearer {served.raw_key}"},
                          json={"model": served.model, "messages": [{"role": "user", "content": content}], **body})
    return response.headers["x-request-id"]


def stream(served: Served, gateway: GatewayProcess, *, events: int | None = None) -> str:
    """A streamed request read to its end, or (``events``) dropped by the client after that many lines."""
    body = {"model": served.model, "messages": [{"role": "user", "content": unique("stream")}], "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {served.raw_key}"}) as response:
        for number, _ in enumerate(response.iter_lines(), start=1):
            if events is not None and number >= events:
                break
        return response.headers["x-request-id"]


def tenant_rows(served: list[Served]) -> set[tuple[Any, ...]]:
    tenants = [each.tenant.pk for each in served]
    columns = ("bucket", "tenant_id", "api_key_id", "endpoint", "public_model", "provider", "deployment_id",
               "price_version_id", *MEASURES)
    return {(model.__name__, *row) for model in (HourlyRollup, DailyRollup)
            for row in model.objects.filter(tenant_id__in=tenants).values_list(*columns)}


def test_rollups_equal_the_ledger_for_every_tenant_hour_and_day_while_two_gateways_write(
    serve_with: Callable[..., Served], fake, gateway: GatewayProcess, second_gateway: GatewayProcess,
):
    start = datetime.now(UTC)
    cached, failing, slow, silent = (serve_with(cache_ttl_s=600, cached_price="0.075"), serve_with(), serve_with(),
                                     serve_with())
    fake.set_rule(cached.upstream_model, cached_tokens=4)  # the provider's prompt cache: a cheaper meter
    fake.set_rule(failing.upstream_model, fail_status=400)
    fake.set_rule(slow.upstream_model, chunk_delay_ms=100)
    fake.set_rule(silent.upstream_model, no_usage=True)  # the gateway estimates usage
    everyone = [cached, failing, slow, silent]
    for served in everyone:
        wait_until_served(second_gateway.url, served.raw_key, served.model)
    gateways = [gateway, second_gateway]
    senders: list[Callable[[GatewayProcess, int], str]] = [
        lambda gw, n: chat(cached, gw, unique("plain")),
        lambda gw, n: stream(cached, gw),
        lambda gw, n: chat(cached, gw, f"asked again {n % 3}"),  # cache hits, in this process (l1) or the other's (l2)
        lambda gw, n: chat(failing, gw, unique("error")),
        lambda gw, n: stream(slow, gw, events=2),  # the client leaves: cancelled
        lambda gw, n: chat(silent, gw, unique("estimated")),
    ]

    def wave(pool: ThreadPoolExecutor, size: int) -> list[Any]:
        return [pool.submit(senders[n % len(senders)], gateways[n % 2], n) for n in range(size)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        first = [future.result() for future in wave(pool, 60)]
        rows = wait_for_rows(first)
        for request_id in first[:2]:
            record_adjustment(entry=rows[request_id], cost_delta_usd=Decimal("-0.0000012345"), note="goodwill")
        second = wave(pool, 60)  # the re-rate runs while these are written
        rerated = rerate(deployment_id=cached.route.deployment.pk, start=start, end=datetime.now(UTC),
                         prices=Prices(Decimal("0.31"), Decimal("1.7"), Decimal("0.013"), Decimal("0.31")),
                         note="the provider's invoice says otherwise")
        request_ids = first + [future.result() for future in second]
    rows = wait_for_rows(request_ids, timeout_s=30)
    end = datetime.now(UTC)

    statuses = {row.status for row in rows.values()}
    assert statuses == {"ok", "error", "cancelled"}
    assert {"estimated", "provider"} <= {row.usage_source for row in rows.values()}
    assert {"hit-l1", "hit-l2"} & {row.cache_status for row in rows.values()}
    assert rerated.adjustments > 0
    tenants = {served.tenant.pk for served in everyone}
    for period in ("hour", "day"):
        ledger = {key: sums for key, sums in ledger_sums(start=start, end=end, period=period).items()
                  if key[0] in tenants}
        assert ledger == {key: sums for key, sums in rollup_sums(start=start, end=end, period=period).items()
                          if key[0] in tenants}
        assert sum(sums["adjustments"] for sums in ledger.values()) == 2 + rerated.adjustments
        drifts = verify_rollups(start=start, end=end, period=period)
        assert [drift for drift in drifts if drift.tenant_id in tenants] == []

    incremental = tenant_rows(everyone)
    rebuild_rollups(start=hour_of(start), end=hour_of(end) + HOUR)
    assert tenant_rows(everyone) == incremental


def test_a_price_version_effective_later_takes_effect_at_its_moment_in_every_gateway(
    serve_with: Callable[..., Served], gateway: GatewayProcess, second_gateway: GatewayProcess,
):
    served = serve_with(input_price="1", output_price="1")
    wait_until_served(second_gateway.url, served.raw_key, served.model)
    deployment = served.route.deployment
    before = deployment.price_versions.get()
    switch = datetime.now(UTC) + timedelta(seconds=1.5)
    after = set_prices(deployment=deployment, input_usd_per_mtok=Decimal(2), output_usd_per_mtok=Decimal(3),
                       effective_from=switch, note="announced last month")

    request_ids: list[str] = []
    while datetime.now(UTC) < switch + timedelta(seconds=0.5):  # requests on both sides of the moment
        request_ids.append(chat(served, (gateway, second_gateway)[len(request_ids) % 2], unique("price")))
    rows = wait_for_rows(request_ids).values()

    assert {row.price_version_id for row in rows} == {before.pk, after.pk}
    for row in rows:
        version = after if row.created_at >= switch else before
        assert row.price_version_id == version.pk
        assert (row.input_usd_per_mtok, row.output_usd_per_mtok) == (version.input_usd_per_mtok,
                                                                     version.output_usd_per_mtok)
        assert row.cost_usd == (row.prompt_tokens * version.input_usd_per_mtok
                                + row.completion_tokens * version.output_usd_per_mtok) / 1_000_000
