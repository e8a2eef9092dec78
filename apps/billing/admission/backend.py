"""Where admission keeps its counters: the base class every backend follows.

Two backends implement it: ``RedisBackend`` (shared by every gateway process) and ``LocalBackend``
(this process only: the whole store without ``REDIS_URL``, and each process's fallback while Redis
is unreachable). The service (``apps.billing.admission.service``) chooses between them per request;
``apps.billing.admission.verdicts`` turns what they report into tickets and refusals, so both speak
the same numbers.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass

from apps.billing.admission.plan import Plan

# Bits of CheckState.refused: which limits of a subject refused the demand.
RPM, TPM, MAX_PARALLEL, BUDGET = 1, 2, 4, 8


@dataclass(slots=True)
class CheckState:
    """One check's counters after the admission (or, when refused, as they stood); None: not limited."""

    refused: int = 0
    requests_level: int | None = None  # GCRA levels (apps.billing.admission.rates)
    tokens_level: int | None = None
    in_flight: int | None = None  # concurrency slots taken, this request's included when admitted
    spent_units: int | None = None  # the budget period's spend and reservations, this one included
    reserved_units: int | None = None


@dataclass(slots=True)
class Outcome:
    admitted: bool
    now_ms: int  # the backend's clock at the decision
    states: tuple[CheckState, ...]  # one per check of ``plan``, in order
    hold: Hold | None = None  # what to settle (admitted only)
    plan: Plan | None = None  # the plan decided, when the backend had to change it (a budget it could not seed)


@dataclass(frozen=True, slots=True)
class Unseeded:
    """Nothing was taken: the budget periods of these checks (plan indexes) have no known spend yet."""

    indexes: tuple[int, ...]


class Hold:
    """What one admission took, for its settlement: kept in the ticket, settled once."""

    __slots__ = ("admitted_ms", "backend", "loop", "plan", "settled", "token_levels")

    def __init__(self, backend: AdmissionBackend, plan: Plan, admitted_ms: int, token_levels: tuple[int, ...]) -> None:
        self.backend = backend
        self.plan = plan
        self.admitted_ms = admitted_ms  # the backend's clock at admission
        self.token_levels = token_levels  # per check: its tpm bucket's level right after admission (0: no tpm)
        self.settled = False
        self.loop = asyncio.get_running_loop()  # settle_later() schedules settlement here


class AdmissionBackend(ABC):
    """Counters for rate limits, concurrency slots and budget reservations.

    ``admit(plan)`` decides every limit of every check of the plan at once, atomically with respect
    to every other admission and settlement of the same store:
    - if every limit has room, it takes from all of them (a request and its tokens from each rpm and
      tpm bucket, a slot from each max_parallel, the plan's cost as a reservation on each budget) and
      returns an admitted ``Outcome`` with the counters after, and a ``Hold`` to settle;
    - otherwise it takes nothing and returns an ``Outcome`` whose states say which limits refused;
    - a budget whose period's spend the store does not know yet takes nothing and returns
      ``Unseeded`` (the caller seeds it from the ledger with ``seed`` and asks again);
    - when the store cannot be reached it returns None; anything it may have taken before the
      failure is given back by itself (buckets drain, slots and reservations expire with their lease).
    A budget admits a demand when limit − spent − reserved ≥ cost, and a zero cost always. A rate
    limit follows ``apps.billing.admission.rates`` with the plan's divisor. A demand whose tokens
    exceed a tpm limit never reaches a backend (the service refuses it as too large).

    ``settle(hold, tokens=, cost_units=)`` runs once per hold: it frees the slots, gives back the
    tokens reserved beyond ``tokens`` that are still in the buckets (or charges those beyond the
    reservation), and turns the reservation into ``cost_units`` spent. True when done, False when the
    store could not be reached (the caller keeps the settlement and replays it).
    """

    @abstractmethod
    async def admit(self, plan: Plan) -> Outcome | Unseeded | None: ...

    @abstractmethod
    async def settle(self, hold: Hold, *, tokens: int, cost_units: int) -> bool: ...
