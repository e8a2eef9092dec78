"""A model behind several deployments on a live gateway, each deployment on its own provider and with
its own upstream model id, so a fault knob set for one upstream model strikes that deployment alone."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import transaction

from apps.billing.models import ApiKey
from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from tests.conftest import wait_until_served
from tests.factories import make_key, make_provider, make_tenant, unique
from tests.harness.gateway import GatewayProcess
from tests.harness.load import Answer, post_one
from tests.harness.served import CHAT_PATH


@dataclass
class Pool:
    gateway: GatewayProcess
    model: PublicModel
    policy: RoutingPolicy
    deployments: list[Deployment]
    raw_key: str
    key: ApiKey
    fake: BackgroundFakeUpstream
    extra_gateways: list[GatewayProcess] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.model.name

    def upstream(self, index: int) -> str:
        return self.deployments[index].upstream_model

    def fail(self, index: int, **knobs: Any) -> None:
        self.fake.set_rule(self.upstream(index), **knobs)

    def served_by(self) -> list[int]:
        """Upstream requests each deployment received so far (from the fake's counters)."""
        by_model = self.fake.stats()["by_model"]
        return [by_model.get(deployment.upstream_model, 0) for deployment in self.deployments]

    def body(self, text: str = "hello there friend", **params: Any) -> dict[str, Any]:
        return {"model": self.name, "messages": [{"role": "user", "content": text}], **params}

    def post(self, body: dict[str, Any] | None = None, *, via: GatewayProcess | None = None,
             timeout_s: float = 30) -> httpx.Response:
        return httpx.post(f"{(via or self.gateway).url}{CHAT_PATH}", json=body or self.body(),
                          headers={"Authorization": f"Bearer {self.raw_key}"}, timeout=timeout_s)

    def served_through(self, gateway: GatewayProcess) -> GatewayProcess:
        """``gateway``, once its routing table has this model (tables reload in the background)."""
        wait_until_served(gateway.url, self.raw_key, self.name)
        return gateway

    def send(self, count: int, *, concurrency: int = 8, body: dict[str, Any] | None = None,
             via: GatewayProcess | None = None) -> list[Answer]:
        return asyncio.run(_send(f"{(via or self.gateway).url}{CHAT_PATH}", self.raw_key,
                                 body or self.body(), count, concurrency))


async def _send(url: str, raw_key: str, body: dict[str, Any], count: int, concurrency: int) -> list[Answer]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, headers={"Authorization": f"Bearer {raw_key}"}, timeout=30) as client:
        async def one() -> Answer:
            async with gate:
                return await post_one(client, url, body)
        return list(await asyncio.gather(*(one() for _ in range(count))))


def make_pool(gateway: GatewayProcess, fake: BackgroundFakeUpstream, *, size: int = 2, name: str | None = None,
              upstream_models: list[str] | None = None, prices: list[tuple[str, str]] | None = None,
              weights: list[int] | None = None, timeout_s: float = 10, **policy: Any) -> Pool:
    """A model served by ``size`` deployments (priority in list order), committed at once."""
    policy.setdefault("max_retries", 2)
    with transaction.atomic():
        routing_policy = RoutingPolicy.objects.create(name=unique("policy"), **policy)
        model = PublicModel.objects.create(name=name or unique("model"), policy=routing_policy)
        deployments = []
        for index in range(size):
            input_price, output_price = (prices or [])[index] if prices else ("0.15", "0.60")
            deployments.append(Deployment.objects.create(
                model=model, provider=make_provider(f"{fake.base_url}/v1", timeout_s=timeout_s),
                upstream_model=(upstream_models or [])[index] if upstream_models else unique("upstream"),
                input_usd_per_mtok=Decimal(input_price), output_usd_per_mtok=Decimal(output_price),
                priority=index + 1, weight=(weights or [])[index] if weights else 1,
            ))
    key, raw_key = make_key(make_tenant())
    if "*" not in model.name:
        wait_until_served(gateway.url, raw_key, model.name)
    return Pool(gateway=gateway, model=model, policy=routing_policy, deployments=deployments, raw_key=raw_key,
                key=key, fake=fake)


@pytest.fixture
def pool_with(gateway: GatewayProcess, fake: BackgroundFakeUpstream, live_db: None) -> Callable[..., Pool]:
    return functools.partial(make_pool, gateway, fake)


def statuses(answers: list[Answer]) -> Counter[int | None]:
    return Counter(answer.status for answer in answers)
