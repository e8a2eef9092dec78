"""Step 3: admit a request against its key's and tenant's rate limits and budgets.

What a request may cost at most is known before any provider is called: its prompt plus the output
it may generate (its own cap times its choices, else the most its deployments allow), priced on the
most expensive deployment it may reach, fallback models included. Admission
(``apps.billing.admission``) takes that much from every limit that applies, all or nothing, and
settlement (``Exchange.finish``) gives back what the request did not use. The prompt is first sized
by a bound that needs no tokenizer (its UTF-8 length); only a request that bound does not fit is
counted exactly and asked again (``Sizer``), so most requests never load a tokenizer.

A refusal is OpenAI's 429: ``rate_limit_exceeded`` with the exact time to retry, or
``insufficient_quota`` with ``x-should-retry: false`` (SDKs do not retry an exhausted budget). A
request refused only by its budget may still be answered from the response cache, which costs
nothing: it is admitted at zero cost, and refused after all if the cache has no answer.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import HttpRequest

from apps.billing.admission import AdmissionRefused, Demand, Ticket
from apps.billing.admission import admit as admit_demand
from apps.billing.limits import Subject
from apps.billing.pricing import worst_case_cost
from apps.providers.errors import OpenAIError
from apps.providers.tokens import bound_prompt_tokens, count_prompt_tokens, media_parts
from apps.proxy.cache.control import directives_for
from apps.proxy.endpoint import ClientRequest, Endpoint, R
from apps.proxy.errors import InvalidRequest
from apps.proxy.exchange import Exchange
from apps.proxy.headers import quota_headers
from apps.proxy.usage_bounds import UsageBounds, output_cap
from apps.routing.table import ModelRoute
from edge_project.tracing import traced

MAX_COST_HEADER = "x-edge-max-cost-usd"
COUNTING_HELPS = {"tpm", "too_large", "budget"}  # refusals an exact count (smaller than the bound) may turn


@traced("edge.admission")
async def admit(request: HttpRequest, exchange: Exchange, route: ModelRoute, call: R, endpoint: Endpoint[R]) -> None:
    assert exchange.key is not None  # admission follows authentication
    cap = output_cap(endpoint.requested_output(call), route) if endpoint.generates_output else 0
    exchange.bounds = UsageBounds.of(body_bytes=len(request.body), media_parts=media_parts(call.body.get("messages")),
                                     output_tokens=cap)
    max_cost = _max_cost(request)
    subjects = exchange.key.subjects
    if not subjects and max_cost is None:
        return  # nothing to count against: no token counting, no round trip
    sized = Sizer(exchange.request_id, subjects, call, cap, route)
    demand = sized.bound()
    if max_cost is not None and demand.cost_usd > max_cost and (demand := sized.counted()).cost_usd > max_cost:
        raise InvalidRequest(
            f"This request could cost up to {demand.cost_usd:f} USD ({demand.tokens - cap} prompt tokens and up to "
            f"{cap} output tokens on the most expensive deployment it may reach), above its {MAX_COST_HEADER} of "
            f"{max_cost:f}.", param=MAX_COST_HEADER, code="max_cost_exceeded",
        )
    if not subjects:
        return
    try:
        exchange.ticket = await _admit(demand, sized)
    except AdmissionRefused as refused:
        if refused.reason != "budget" or not _may_be_cached(request, route, endpoint):
            raise refusal(refused) from None
        try:  # a cache hit costs nothing: admitted by everything but the budget
            exchange.ticket = await admit_demand(dataclasses.replace(sized.exact or demand, cost_usd=Decimal(0)))
        except AdmissionRefused as also:
            raise refusal(also) from None
        exchange.refused_unless_cached = refusal(refused)


class Sizer:
    """A request's demand, sized two ways: by a bound that needs no tokenizer (its texts' UTF-8 length),
    and by an exact count (o200k), which costs a tokenizer's memory and time: only asked for when the
    bound does not fit."""

    def __init__(self, request_id: str, subjects: tuple[Subject, ...], call: ClientRequest, cap: int,
                 route: ModelRoute) -> None:
        self.request_id, self.subjects, self.call, self.cap, self.route = request_id, subjects, call, cap, route
        self.exact: Demand | None = None

    def bound(self) -> Demand:
        return self._demand(bound_prompt_tokens(self.call.body))

    def counted(self) -> Demand:
        if self.exact is None:
            self.exact = self._demand(count_prompt_tokens(self.call.body))
        return self.exact

    def _demand(self, prompt: int) -> Demand:
        worst = worst_case_cost(prompt, self.cap, (target.prices for target in self.route.reachable_targets()))
        return Demand(request_id=self.request_id, subjects=self.subjects, tokens=prompt + self.cap, cost_usd=worst)


async def _admit(demand: Demand, sized: Sizer) -> Ticket:
    """Admit the demand; one the bound made too large for tokens or budget is counted and asked again."""
    try:
        return await admit_demand(demand)
    except AdmissionRefused as refused:
        if sized.exact is not None or refused.limit not in COUNTING_HELPS:
            raise
        counted = sized.counted()
        if counted.tokens >= demand.tokens:
            raise
        return await admit_demand(counted)


def insist_on_budget(exchange: Exchange) -> None:
    """After a cache miss: a request its budget refused came this far only to look for a cached answer."""
    if exchange.refused_unless_cached is not None:
        raise exchange.refused_unless_cached


def _may_be_cached(request: HttpRequest, route: ModelRoute, endpoint: Endpoint[Any]) -> bool:
    directives = directives_for(request, route) if endpoint.cacheable else None
    return directives is not None and directives.read


def _max_cost(request: HttpRequest) -> Decimal | None:
    """A request's own cap on its cost, ``x-edge-max-cost-usd: 0.05``."""
    raw = request.headers.get(MAX_COST_HEADER)
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value <= 0:
        raise InvalidRequest(f"Invalid {MAX_COST_HEADER}: expected a positive number of USD such as 0.05.",
                             param=MAX_COST_HEADER, code="invalid_value")
    return value


def refusal(refused: AdmissionRefused) -> OpenAIError:
    """The refusal as OpenAI words it, with the headers its SDKs act on."""
    headers = quota_headers(refused.requests, refused.tokens, refused.budget_remaining_usd)
    if refused.reason == "budget":
        headers["x-should-retry"] = "false"
        return OpenAIError(refused.message, status=429, type="insufficient_quota", code="insufficient_quota",
                           headers=headers)
    if refused.retry_after_s is None:  # a request too large for the limit itself: retrying cannot help
        headers["x-should-retry"] = "false"
    else:
        headers["Retry-After"] = str(max(1, math.ceil(refused.retry_after_s)))
        headers["retry-after-ms"] = str(max(1, math.ceil(refused.retry_after_s * 1000)))
    kind = "tokens" if refused.limit in ("tpm", "too_large") else "requests"
    return OpenAIError(refused.message, status=429, type=kind, code="rate_limit_exceeded", headers=headers)
