"""Admission counters in Redis, shared by every gateway process: one script call admits, one settles.

Keys (after EDGE_REDIS_PREFIX), all of one tenant under its hash tag, so one script may touch a
key's and its tenant's counters on Redis Cluster:
- ``adm:{t<tenant>}:<key|tenant>:<id>:rate``: hash ``rl``/``rt``, ``tl``/``tt``: the rpm and tpm
  buckets' levels and when they were set; it expires once drained (a missing bucket is empty).
- ``…:slots``: zset request id → lease expiry: concurrency slots in use.
- ``…:budget:<period key>``: hash ``spent`` (rebuilt from the ledger) and ``seeded`` (when),
  ``reserved`` (the sum of live reservations) and ``r:<request id>`` (each reservation);
  ``…:budget:<period key>:leases``: zset request id → lease expiry of each reservation. Both expire
  after a day without use, after which the spend is rebuilt from the ledger again.
- ``adm:{t<tenant>}:settled:<request id>``: a replayed settlement's marker (at most once).
- ``adm:processes``: zset process id → heartbeat expiry: the gateway processes alive.

Times are Redis' own clock (TIME in the scripts), so hosts whose clocks disagree share exact limits;
leases are renewed from this host's clock corrected by the offset the last script reply showed.
A test passes its own clock instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio
from django.conf import settings

from apps.billing.admission import rates
from apps.billing.admission.backend import AdmissionBackend, CheckState, Hold, Outcome, Unseeded
from apps.billing.admission.batching import Script, ScriptBatcher
from apps.billing.admission.plan import Check, Plan
from edge_project.redis_clients import bounded, redis_key

logger = logging.getLogger(__name__)

IDLE_MS = 86_400_000  # a budget period's counters unused this long are dropped (and rebuilt when needed)
MARKER_MS = 86_400_000  # how long a replayed settlement is remembered as applied
Call = tuple[tuple[str, ...], tuple[str | int, ...]]  # a settle.lua call: keys, arguments


ADMIT = Script("admit.lua")
SEED = Script("seed.lua")
SETTLE = Script("settle.lua")


def subject_keys(check: Check) -> tuple[str, str, str, str]:
    subject = check.subject
    base = redis_key("adm", f"{{t{subject.tenant_id}}}", subject.kind, subject.id)
    budget = f"{base}:budget:{check.period.key if check.period else '-'}"
    return f"{base}:rate", f"{base}:slots", budget, f"{budget}:leases"


def marker_key(tenant_id: int, request_id: str) -> str:
    return redis_key("adm", f"{{t{tenant_id}}}", "settled", request_id)


def processes_key() -> str:
    return redis_key("adm", "processes")


class RedisHold(Hold):
    """An admission taken in Redis; its slots and reservation are a lease, renewed while it runs."""

    __slots__ = ("keys",)

    def __init__(self, backend: RedisBackend, plan: Plan, admitted_ms: int, token_levels: tuple[int, ...],
                 keys: tuple[tuple[str, str, str, str], ...]) -> None:
        super().__init__(backend, plan, admitted_ms, token_levels)
        self.keys = keys

    @property
    def leased(self) -> bool:
        """Holds anything that would expire: a slot or a reservation."""
        plan = self.plan
        return any(check.max_parallel is not None or (check.period is not None and plan.cost_units > 0)
                   for check in plan.checks)

    def changes(self, tokens: int, cost_units: int) -> bool:
        """Whether settling with these figures changes anything in Redis (an rpm-only ticket never does)."""
        plan = self.plan
        return any(check.max_parallel is not None or (check.tpm is not None and tokens != plan.tokens)
                   or (check.period is not None and (cost_units or plan.cost_units)) for check in plan.checks)

    def renew(self, pipe: redis.asyncio.client.Pipeline, lease_ms: int) -> None:
        """edge_project.leases: push this admission's slots and reservation ``lease_ms`` ahead."""
        assert isinstance(self.backend, RedisBackend)
        expiry = self.backend.now_ms() + lease_ms
        request_id = self.plan.request_id
        for check, (_, slots, _, leases) in zip(self.plan.checks, self.keys, strict=True):
            if check.max_parallel is not None:
                pipe.zadd(slots, {request_id: expiry}, xx=True)  # gone (settled or expired): stays gone
                pipe.pexpire(slots, lease_ms + rates.WINDOW_MS)
            if check.period is not None and self.plan.cost_units > 0:
                pipe.zadd(leases, {request_id: expiry}, xx=True)


class RedisBackend(AdmissionBackend):
    def __init__(self, *, clock: Callable[[], int] | None = None) -> None:
        self._clock = clock  # None: Redis' clock
        self._scripts = ScriptBatcher()
        self._offset_ms = 0  # Redis' clock minus this host's, as of the last reply

    def now_ms(self) -> int:
        """Redis' clock as this host best knows it (or the test's clock)."""
        return self._clock() if self._clock is not None else _host_ms() + self._offset_ms

    def _given_now(self) -> str | int:
        return self._clock() if self._clock is not None else ""

    async def admit(self, plan: Plan) -> Outcome | Unseeded | None:
        keys = tuple(subject_keys(check) for check in plan.checks)
        args: list[str | int] = [self._given_now(), plan.request_id, _lease_ms(), plan.tokens, plan.cost_units, IDLE_MS]
        args += [f"{_or_blank(check.rpm)},{_or_blank(check.tpm)},{_or_blank(check.max_parallel)},"
                 f"{_or_blank(check.budget_units)}" for check in plan.checks]
        reply = await self._scripts.call(ADMIT, [key for four in keys for key in four], args)
        if reply is None:
            return None
        verdict, now_text, *subjects = reply.decode().split(" ")
        now = int(now_text)
        if self._clock is None:
            self._offset_ms = now - _host_ms()
        if verdict == "unseeded":
            return Unseeded(tuple(int(number) - 1 for number in subjects[0].split(",")))
        states = tuple(_state(subject) for subject in subjects)
        if verdict != "ok":
            return Outcome(False, now, states)
        for check, state in zip(plan.checks, states, strict=True):
            if check.budget_units is not None and state.reserved_units is not None:
                state.reserved_units += plan.cost_units  # the script reports the reservations before this one
        levels = tuple(state.tokens_level or 0 for state in states)
        return Outcome(True, now, states, RedisHold(self, plan, now, levels, keys))

    async def seed(self, check: Check, spent_units: int) -> bool:
        """Set the budget period's spend unless another process has (SET-if-absent), noting when."""
        _, _, budget, leases = subject_keys(check)
        return await self._scripts.call(SEED, (budget, leases), (self._given_now(), spent_units, IDLE_MS)) is not None

    async def settle(self, hold: Hold, *, tokens: int, cost_units: int) -> bool:
        assert isinstance(hold, RedisHold)
        keys, args = self.settle_call(hold, tokens=tokens, cost_units=cost_units, mode="first")
        return await self._scripts.call(SETTLE, keys, args) is not None

    def settle_call(
        self, hold: RedisHold, *, tokens: int, cost_units: int, mode: str, spent_at: str | int = ""
    ) -> Call:
        """settle.lua's call; ``spent_at`` (Redis' clock): when the request ended, for a call sent later."""
        plan = hold.plan
        keys = [key for four in hold.keys for key in four]
        keys.append(marker_key(plan.checks[0].subject.tenant_id, plan.request_id))
        args: list[str | int] = [self._given_now(), plan.request_id, mode, IDLE_MS, MARKER_MS, spent_at]
        for index, check in enumerate(plan.checks):
            excess = (plan.tokens - tokens) * rates.WINDOW_MS if check.tpm is not None else 0
            slot = "1" if check.max_parallel is not None else ""
            cost = cost_units if check.period is not None else ""
            args.append(f"{_or_blank(check.tpm)},{excess},{hold.token_levels[index]},{hold.admitted_ms},{slot},{cost}")
        return tuple(keys), tuple(args)

    def spend_call(self, plan: Plan, cost_units: int) -> Call:
        """A cost spent now in the in-process fallback, to add to each budget's period in Redis (at most once)."""
        keys: list[str] = []
        args: list[str | int] = [self._given_now(), plan.request_id, "once", IDLE_MS, MARKER_MS, self.now_ms()]
        for check in plan.checks:
            keys += subject_keys(check)
            args.append(f",0,0,0,,{cost_units if check.period is not None else ''}")
        keys.append(marker_key(plan.checks[0].subject.tenant_id, plan.request_id))
        return tuple(keys), tuple(args)

    async def replay(self, calls: list[Call]) -> bool:
        """Send settle.lua calls kept while Redis was away, in one round trip. False: not sent (keep them)."""

        async def send(client: redis.asyncio.Redis) -> bool:
            pipe = client.pipeline(transaction=False)
            pipe.script_load(SETTLE.text)
            for keys, args in calls:
                pipe.evalsha(SETTLE.sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
            for (keys, _), result in zip(calls, results[1:], strict=True):
                if isinstance(result, Exception):  # this call can never succeed: sending it again would not help
                    logger.error("admission settlement refused by Redis for %s: %r", keys[0], result)
            return True

        return bool(await bounded(send))

    async def heartbeat(self, process_id: str, lease_ms: int) -> int | None:
        """Announce this process for ``lease_ms``; the number of processes alive, or None if Redis is away."""
        now, key = self.now_ms(), processes_key()

        async def beat(client: redis.asyncio.Redis) -> int:
            pipe = client.pipeline(transaction=False)
            pipe.zadd(key, {process_id: now + lease_ms})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            pipe.pexpire(key, lease_ms * 2)
            return int((await pipe.execute())[2])

        return await bounded(beat)

    async def leave(self, process_id: str) -> None:
        await bounded(lambda client: client.zrem(processes_key(), process_id))


def _state(text: str) -> CheckState:
    """One subject's part of admit.lua's reply: 'bits,requests level,tokens level,slots,spent,reserved'."""
    bits, requests, tokens, slots, spent, reserved = text.split(",")
    return CheckState(
        refused=int(bits),
        requests_level=int(requests) if requests != "-1" else None,
        tokens_level=int(tokens) if tokens != "-1" else None,
        in_flight=int(slots) if slots != "-1" else None,
        spent_units=int(spent) if spent else None,
        reserved_units=int(reserved) if reserved else None,
    )


def _or_blank(value: int | None) -> str | int:
    return "" if value is None else value


def _lease_ms() -> int:
    return int(settings.EDGE_LEASE_S * 1000)


def _host_ms() -> int:
    return int(time.time() * 1000)
