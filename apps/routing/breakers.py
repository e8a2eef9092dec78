"""Circuit breakers per deployment: pybreaker's state machine, driven from async code, shared by processes.

pybreaker counts outcomes only around a synchronous call (``breaker.call(async_fn)`` sees a
coroutine object, never its failure), so the attempt is awaited first and its outcome is then
replayed through ``breaker.call()``: pybreaker decides the transitions (N failures → open, reset
timeout → half-open, M successes → closed) exactly as it would for a synchronous call.

Contract:
- ``admit()`` says whether a deployment may be called now. Closed: yes, with no I/O. Open: no,
  until the reset timeout has passed. Then half-open: one trial call at a time, across processes
  (a local flag, plus ``SET NX`` with a TTL in Redis so two processes cannot both send one). Its
  answer is the attempt's token: ``TRIAL`` marks the one attempt whose outcome decides half-open.
- ``record()`` feeds the outcome in with that token; a transition is written to Redis at once
  (failures are rare, so the failure path may pay a round trip). Failure counts are per process;
  states are shared. An attempt admitted while closed that ends after the breaker opened counts
  for nothing: the trial alone closes or reopens it, and only the trial frees the trial key.
- ``release()`` (an attempt with no outcome to count) and ``abandon()`` (one cancelled) free a
  trial's slot, the Redis key included, so other processes need not wait for its TTL.
- Other processes' transitions arrive through ``apps.routing.shared_state``'s refresh loop.
- A deployment forced open or closed in admin (``Deployment.breaker_override``, carried by the
  routing table to every process) ignores the state machine.
- Redis trouble never fails a request: the local view decides alone.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pybreaker
import redis.asyncio

from apps.routing.models import BreakerOverride
from apps.routing.table import RoutePolicy, Target
from edge_project.background import run_in_background
from edge_project.redis_clients import bounded, redis_key

logger = logging.getLogger(__name__)

STATE_TTL_S = 86400
CLOSED, OPEN, HALF_OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN


@dataclass(frozen=True, slots=True)
class SharedBreakerState:
    """A breaker's state as stored in Redis (wall-clock times, comparable across processes)."""

    state: str
    opened_at: float
    changed_at: float

    def to_json(self) -> bytes:
        return orjson.dumps([self.state, self.opened_at, self.changed_at])

    @classmethod
    def from_json(cls, raw: bytes | str) -> SharedBreakerState | None:
        try:
            state, opened_at, changed_at = orjson.loads(raw)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return None
        return cls(str(state), float(opened_at), float(changed_at)) if state in (CLOSED, OPEN, HALF_OPEN) else None


def state_key(deployment_id: int) -> str:
    return redis_key("breaker", deployment_id)


def trial_key(deployment_id: int) -> str:
    return redis_key("breaker", deployment_id, "trial")


class Admission(enum.Enum):
    """``admit()``'s answer, kept by the attempt as its token."""

    REFUSED = "refused"
    ADMITTED = "admitted"  # closed (or forced closed): the outcome counts only while it stays closed
    TRIAL = "trial"  # the half-open trial: its outcome closes or reopens the breaker

    def __bool__(self) -> bool:
        return self is not Admission.REFUSED


class _Outcome(Exception):
    """A failed attempt, replayed into pybreaker after the await."""


def _replay(failed: bool) -> None:
    if failed:
        raise _Outcome


class DeploymentBreaker(pybreaker.CircuitBreakerListener):
    def __init__(self, deployment_id: int, policy: RoutePolicy) -> None:
        self.deployment_id = deployment_id
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=max(policy.breaker_failure_threshold, 1), reset_timeout=policy.breaker_reset_s,
            success_threshold=policy.breaker_success_threshold, listeners=[self],
            name=str(deployment_id), throw_new_error_on_trip=False,
        )
        self.policy = policy
        self.changed_at = 0.0
        self.trial_in_flight = False
        self.unpublished = False
        self._adopting = False

    def configure(self, policy: RoutePolicy) -> None:
        """Follow policy edits (the table reloads; breakers keep their state)."""
        self.policy = policy
        self.breaker.fail_max = max(policy.breaker_failure_threshold, 1)
        self.breaker.reset_timeout = policy.breaker_reset_s
        self.breaker.success_threshold = policy.breaker_success_threshold

    # pybreaker listener: every transition this process makes is to be published.
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        if not self._adopting:
            self.changed_at = time.time()
            self.unpublished = True
            logger.info("breaker of deployment %s: %s → %s", self.deployment_id,
                        getattr(old_state, "name", None), new_state.name)

    @property
    def state(self) -> str:
        return str(self.breaker.current_state)

    def opened_at(self) -> float:
        opened = self.breaker._state_storage.opened_at  # pybreaker keeps it only in its storage
        return opened.timestamp() if opened else 0.0

    def trial_due(self) -> bool:
        return self.state == HALF_OPEN or (
            self.state == OPEN and time.time() >= self.opened_at() + self.breaker.reset_timeout
        )

    def record(self, *, failed: bool) -> None:
        with contextlib.suppress(_Outcome, pybreaker.CircuitBreakerError):
            self.breaker.call(_replay, failed)

    def shared(self) -> SharedBreakerState:
        return SharedBreakerState(self.state, self.opened_at(), self.changed_at)

    def adopt(self, remote: SharedBreakerState) -> None:
        """Take another process's newer transition as this process's state."""
        if remote.changed_at <= self.changed_at:
            return
        storage = self.breaker._state_storage
        self._adopting = True
        try:
            if remote.opened_at:
                storage.opened_at = datetime.fromtimestamp(remote.opened_at, UTC)
            storage.state = remote.state
            _ = self.breaker.state  # pybreaker syncs its state object with the storage on read
            storage.reset_counter()
        finally:
            self._adopting = False
        self.changed_at = remote.changed_at


class BreakerBoard:
    """Every deployment's breaker in this process."""

    def __init__(self) -> None:
        self.breakers: dict[int, DeploymentBreaker] = {}

    def get(self, deployment_id: int, policy: RoutePolicy) -> DeploymentBreaker:
        breaker = self.breakers.get(deployment_id)
        if breaker is None:
            breaker = self.breakers[deployment_id] = DeploymentBreaker(deployment_id, policy)
        elif breaker.policy is not policy:  # a reloaded table: identity is enough, and cheap
            breaker.configure(policy)
        return breaker

    def state_of(self, target: Target) -> str:
        """What admin shows: forced states win, then the breaker's own (open past its timeout: half-open)."""
        if target.breaker_override != BreakerOverride.AUTO:
            return f"forced {target.breaker_override}"
        breaker = self.breakers.get(target.deployment_id)
        if breaker is None:
            return CLOSED
        return HALF_OPEN if breaker.trial_due() else breaker.state

    async def admit(self, target: Target, policy: RoutePolicy, *, trial_ttl_s: float) -> Admission:
        if target.breaker_override == BreakerOverride.OPEN:
            return Admission.REFUSED
        if target.breaker_override == BreakerOverride.CLOSED or policy.breaker_failure_threshold == 0:
            return Admission.ADMITTED
        breaker = self.get(target.deployment_id, policy)
        if breaker.state == CLOSED:
            return Admission.ADMITTED
        if not breaker.trial_due() or breaker.trial_in_flight:
            return Admission.REFUSED
        if not await _claim_trial(target.deployment_id, trial_ttl_s):
            return Admission.REFUSED
        breaker.trial_in_flight = True
        return Admission.TRIAL

    async def record(self, target: Target, policy: RoutePolicy, *, failed: bool,
                     admission: Admission = Admission.ADMITTED) -> None:
        if target.breaker_override != BreakerOverride.AUTO or policy.breaker_failure_threshold == 0:
            return
        breaker = self.get(target.deployment_id, policy)
        is_trial = admission is Admission.TRIAL
        if not is_trial and breaker.state != CLOSED:
            return  # admitted before the breaker opened: the trial, not this late call, decides
        breaker.record(failed=failed)
        if breaker.unpublished:
            await publish(breaker)
        if is_trial:
            breaker.trial_in_flight = False
            await _release_trial(target.deployment_id)

    async def release(self, target: Target, admission: Admission) -> None:
        """The attempt ended with no outcome to count (the client's own 4xx): free its trial slot."""
        if admission is Admission.TRIAL and self._free_local_trial(target):
            await _release_trial(target.deployment_id)

    def seconds_until_trial(self, targets: tuple[Target, ...]) -> float | None:
        """How soon the first of these open breakers lets a trial through (None: none will by itself)."""
        waits = [
            max(0.0, breaker.opened_at() + breaker.breaker.reset_timeout - time.time())
            for target in targets
            if target.breaker_override == BreakerOverride.AUTO
            and (breaker := self.breakers.get(target.deployment_id)) is not None and breaker.state != CLOSED
        ]
        return min(waits) if waits else None

    def abandon(self, target: Target, admission: Admission) -> None:
        """The attempt ended without an outcome (the client left): free its trial slot, locally now and
        in Redis from a background task (the cancelled request cannot wait for a round trip)."""
        if admission is Admission.TRIAL and self._free_local_trial(target):
            run_in_background(_release_trial(target.deployment_id))

    def _free_local_trial(self, target: Target) -> bool:
        breaker = self.breakers.get(target.deployment_id)
        if breaker is None:
            return False
        breaker.trial_in_flight = False
        return True

    def reset(self) -> None:
        self.breakers.clear()


async def _claim_trial(deployment_id: int, ttl_s: float) -> bool:
    async def claim(client: redis.asyncio.Redis) -> bool:
        return bool(await client.set(trial_key(deployment_id), b"1", nx=True, px=max(int(ttl_s * 1000), 1)))

    claimed = await bounded(claim)
    return True if claimed is None else claimed  # no Redis: the local flag alone, one trial per process


async def _release_trial(deployment_id: int) -> None:
    await bounded(lambda client: client.delete(trial_key(deployment_id)))


async def publish(breaker: DeploymentBreaker) -> None:
    # Without Redis, or if this write fails, other processes will not see this transition: they find their own.
    state = breaker.shared().to_json()
    await bounded(lambda client: client.set(state_key(breaker.deployment_id), state, ex=STATE_TTL_S))
    breaker.unpublished = False
