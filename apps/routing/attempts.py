"""Step 6's loop: try a route's deployments in strategy order until one answers.

- Only failures another attempt may fix are tried again (``ProviderError.retryable``); the
  client's own 4xx ends the request at once.
- The same deployment is retried, after exponential backoff with full jitter, only where that can
  help: connect errors and resets, 502/503/504, and a 429 whose Retry-After is short (after that
  delay). Otherwise, and after ``same_deployment_retries``, the loop fails over, preferring a
  provider that has not failed this request yet.
- Open breakers are skipped; at most ``max_retries`` further attempts in all; same-deployment
  retries are charged to the retry budget; one deadline bounds every attempt and backoff.
- When the model's own deployments are exhausted, its policy's fallback models are tried (for the
  last error's code, else ``default``), e.g. a larger-context model on ``context_length_exceeded``.

Every attempt that reached an upstream is written down, so responses and the ledger can say where
a request went.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.errors import Fault, ProviderError
from apps.providers.registry import adapter_for
from apps.routing.attempt_spans import attempt_ended, attempt_span
from apps.routing.breakers import Admission
from apps.routing.shared_state import shared_state
from apps.routing.strategies import RequestShape, order_targets
from apps.routing.table import ModelRoute, RoutePolicy, Target

T = TypeVar("T")
Verdict = Literal["success", "failure", "neutral"]
NO_SHAPE = RequestShape()
SAME_DEPLOYMENT_STATUSES = {502, 503, 504}
# Not worth another try on the same deployment, but a broken provider's doing: another may answer.
FAILOVER_CODES = {"upstream_response_too_large", "upstream_auth_failed"}
# Failed over like a provider's failure, but the deployment is fine: it cannot serve this kind of request.
NOT_THE_DEPLOYMENTS_FAULT = {"unsupported_by_provider"}


@dataclass(frozen=True, slots=True)
class Attempt:
    target: Target
    outcome: str  # "ok" or the error code
    duration_ms: float  # unrounded: the gateway's overhead is this subtracted from the request's time
    model: str = ""  # the public model whose route it belonged to (differs on a fallback)
    fallback: bool = False  # of a fallback model, not of the route the request started on
    fault: str = ""  # a failed attempt's Fault: "provider" when it counts against its deployment, else "client"


class _Run:
    """One request's attempts so far, its deadline, and the policy of the route it started on."""

    def __init__(self, route: ModelRoute, attempts: list[Attempt], *, stream: bool, waited_s: float) -> None:
        self.stream = stream
        self.policy = route.policy
        self.name = route.key
        self.attempts = attempts
        self.left = route.max_retries + 1
        self.deadline = time.monotonic() + route.policy.request_deadline_s - waited_s

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


async def attempt_in_order(
    route: ModelRoute,
    call: Callable[[ProviderAdapter, Target], Awaitable[T]],
    attempts: list[Attempt],
    shape: RequestShape = NO_SHAPE,
    *,
    stream: bool = False,
    waited_s: float = 0.0,
) -> tuple[Target, T]:
    """The first deployment that answers and its answer; raises the last ``ProviderError`` otherwise.
    For streams, an attempt's duration is its time to first batch: recorded as TTFT, never as latency
    (a whole answer's time), and strategies rank a stream's deployments by TTFT. ``waited_s``: what
    the request already spent waiting for an identical one (the cache), taken off its deadline."""
    run = _Run(route, attempts, stream=stream, waited_s=waited_s)
    if stream and not shape.stream:
        shape = dataclasses.replace(shape, stream=True)
    shared_state.budget.record_request(route.key)
    try:
        return await _try_route(route, call, run, shape)
    except ProviderError as exc:
        error = exc
    for fallback in route.fallbacks_for(error.code):
        if run.left <= 0 or not _may_fall_back(error, route):
            break
        tried = len(run.attempts)
        try:
            return await _try_route(fallback, call, run, shape)
        except ProviderError as exc:
            if len(run.attempts) > tried:  # else the fallback had no deployment to try: the earlier
                error = exc  # error (a 429 with Retry-After, a 504) says more than its 503
    raise error


def _may_fall_back(error: ProviderError, route: ModelRoute) -> bool:
    return may_fail_over(error) or (error.code or "") in dict(route.fallbacks)


def may_fail_over(error: ProviderError) -> bool:
    return error.retryable or error.code in FAILOVER_CODES


async def _try_route(
    route: ModelRoute, call: Callable[[ProviderAdapter, Target], Awaitable[T]], run: _Run, shape: RequestShape
) -> tuple[Target, T]:
    remaining = order_targets(route, shape, shared_state.health)
    failed_providers: set[int] = set()
    error: ProviderError | None = None
    while remaining and run.left > 0:
        target = remaining.pop(0)
        trial_ttl_s = min(target.upstream.timeout_s, max(run.remaining_s(), 0.1))
        admission = await shared_state.breakers.admit(target, route.policy, trial_ttl_s=trial_ttl_s)
        if not admission:
            continue
        try:
            return target, await _on_one_deployment(route, target, call, run, admission)
        except ProviderError as exc:
            error = exc
            if not may_fail_over(exc):
                raise
        failed_providers.add(target.upstream.provider_id)
        remaining.sort(key=lambda other: other.upstream.provider_id in failed_providers)  # stable
    raise error or unavailable(route)


async def _on_one_deployment(
    route: ModelRoute, target: Target, call: Callable[[ProviderAdapter, Target], Awaitable[T]], run: _Run,
    admission: Admission,
) -> T:
    retries = 0
    while True:
        try:
            return await _attempt(route, target, call, run, admission)
        except ProviderError as exc:
            delay = _same_deployment_delay(exc, route.policy, retries)
            if delay is None or not _may_retry_same(route, target, run, retries, delay):
                raise
        retries += 1
        admission = Admission.ADMITTED  # a retry happens only once closed again: never the trial
        await asyncio.sleep(delay)


def _may_retry_same(route: ModelRoute, target: Target, run: _Run, retries: int, delay: float) -> bool:
    return (
        run.left > 0 and retries < route.policy.same_deployment_retries and delay < run.remaining_s()
        and shared_state.breakers.state_of(target) in ("closed", "forced closed")  # a failed trial reopened it
        and shared_state.budget.try_spend(run.name, run.policy.retry_budget_ratio)
    )


async def _attempt(
    route: ModelRoute, target: Target, call: Callable[[ProviderAdapter, Target], Awaitable[T]], run: _Run,
    admission: Admission,
) -> T:
    run.left -= 1
    started = time.perf_counter()
    with attempt_span(target, fallback=route.key != run.name) as span:
        try:
            async with asyncio.timeout(max(run.remaining_s(), 0.0)):
                result = await call(adapter_for(target.upstream), target)
        except ProviderError as exc:
            attempt_ended(span, exc)
            await _account(route, target, run, started, exc, admission)
            raise
        except TimeoutError:
            late = deadline_exceeded(route)
            attempt_ended(span, late)
            await _account(route, target, run, started, late, admission)
            raise late from None
        except BaseException:
            shared_state.breakers.abandon(target, admission)  # cancelled (the client left): no outcome to count
            raise
        attempt_ended(span, None)
    await _account(route, target, run, started, None, admission)
    return result


async def _account(route: ModelRoute, target: Target, run: _Run, started: float, error: ProviderError | None,
                   admission: Admission) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    outcome = "ok" if error is None else error.code or error.type
    verdict = verdict_on_deployment(error)
    fault = "" if error is None else Fault.PROVIDER if verdict == "failure" else Fault.CLIENT
    # By key: a pattern route's name is the pattern itself, never the client's model name.
    run.attempts.append(Attempt(target, outcome, duration_ms, model=route.name, fallback=route.key != run.name,
                                fault=fault))
    if verdict == "neutral":
        await shared_state.breakers.release(target, admission)  # no outcome, but a trial slot must not stay taken
        return
    ok = verdict == "success"
    measured_ms = duration_ms if ok else None
    shared_state.health.record(target.deployment_id, ok=ok, latency_ms=None if run.stream else measured_ms,
                               ttft_ms=measured_ms if run.stream else None)
    await shared_state.breakers.record(target, route.policy, failed=not ok, admission=admission)


async def record_late_failure(route: ModelRoute, target: Target, error: ProviderError) -> None:
    """A stream that failed after its first byte: too late to retry, not too late to count."""
    if counts_against_deployment(error):
        shared_state.health.record(target.deployment_id, ok=False)
        await shared_state.breakers.record(target, route.policy, failed=True)


def verdict_on_deployment(error: ProviderError | None) -> Verdict:
    """What an attempt says about its deployment. A failure: timeouts (the request's deadline too),
    5xx, 429, resets, malformed or oversized answers, refused credentials. Neutral: the client's own
    4xx, and a kind that cannot serve this request; they must not count as successes either, or they
    would reset the breaker's run of failures and close a half-open breaker."""
    if error is None:
        return "success"
    if error.code in NOT_THE_DEPLOYMENTS_FAULT:
        return "neutral"
    if may_fail_over(error) or error.code == "request_deadline_exceeded":
        return "failure"
    return "neutral"


def counts_against_deployment(error: ProviderError) -> bool:
    """The provider, not the request, was at fault (see ``verdict_on_deployment``)."""
    return verdict_on_deployment(error) == "failure"


def _same_deployment_delay(error: ProviderError, policy: RoutePolicy, retry: int) -> float | None:
    """Seconds to wait before retrying the same deployment, or None when that cannot help."""
    if error.upstream_status == 429:
        after = error.retry_after_s
        return after if after is not None and after <= policy.retry_after_cap_s else None
    if error.code == "upstream_unreachable" or error.upstream_status in SAME_DEPLOYMENT_STATUSES:
        return backoff(policy, retry)
    return None


def backoff(policy: RoutePolicy, retry: int) -> float:
    # Full jitter: spreads retries of many clients so they do not hit a recovering provider together.
    ceiling = min(policy.backoff_cap_s, policy.backoff_start_s * policy.backoff_multiplier**retry)
    return random.uniform(0, ceiling)


def unavailable(route: ModelRoute) -> ProviderError:
    wait_s = shared_state.breakers.seconds_until_trial(route.targets)
    return ProviderError(
        f"Every deployment of model `{route.name}` is unavailable right now (circuit breakers open); retry shortly.",
        status=503, type="service_unavailable", code="deployments_unavailable", retryable=True,
        headers={"Retry-After": str(max(1, math.ceil(wait_s)))} if wait_s is not None else None,
    )


def deadline_exceeded(route: ModelRoute) -> ProviderError:
    return ProviderError(
        f"The request to model `{route.name}` exceeded its deadline of {route.policy.request_deadline_s:g} s.",
        status=504, type="timeout", code="request_deadline_exceeded", retryable=False,
    )
