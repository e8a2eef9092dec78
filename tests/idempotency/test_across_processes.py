"""Claims across processes, through Redis: worker processes (worker.py) hold and wait on one key as two
gateway processes would; a dead process's claim expires within its lease, a live one's is renewed."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from apps.proxy import idempotency
from apps.proxy.idempotency import Claim
from tests.harness.waiting import wait_until
from tests.idempotency.conftest import Worker, new_tenant, run

pytestmark = pytest.mark.slow

LEASE_S = 1.0


def start_pair(workers: Callable[..., Worker], **options: object) -> tuple[Worker, Worker]:
    """Two processes, five claims each on one key, started once both are ready."""
    pair = (workers(claims=5, **options), workers(claims=5, **options))
    for worker in pair:
        worker.wait_for("ready")
    for worker in pair:
        worker.send("go")
    return pair


def owner_of(pair: tuple[Worker, Worker]) -> Worker:
    return next(worker for worker in pair if worker.count("claimed") > worker.count("released"))


def test_ten_concurrent_claims_across_two_processes_make_one_owner_and_nine_replays(workers):
    pair = start_pair(workers, tenant=new_tenant(), key="k", fingerprint="f", wait_s=30)
    wait_until(lambda: sum(worker.count("claimed") for worker in pair) == 1
               and sum(worker.waiting() for worker in pair) == 9, what="one owner and nine waiting")

    owner = owner_of(pair)
    owner.send("finish")
    owner.wait_for("finished")
    for worker in pair:
        worker.wait_for("replayed", 5 - worker.count("claimed"))

    answer = next(event["body"] for event in owner.events if event["event"] == "finished")
    assert sum(worker.count("claimed") for worker in pair) == 1
    assert [body for worker in pair for body in worker.bodies()] == [answer] * 9


def test_release_in_one_process_lets_exactly_one_waiter_anywhere_claim_next(workers):
    pair = start_pair(workers, tenant=new_tenant(), key="k", fingerprint="f", wait_s=30)
    wait_until(lambda: sum(worker.count("claimed") for worker in pair) == 1
               and sum(worker.waiting() for worker in pair) == 9, what="one owner and nine waiting")

    first = owner_of(pair)
    first.send("release")
    wait_until(lambda: sum(worker.count("claimed") for worker in pair) == 2
               and sum(worker.waiting() for worker in pair) == 8, what="a second owner and eight waiting")
    second = owner_of(pair)  # either process: the released owner's may win the key again
    second.send("finish")
    second.wait_for("finished")
    for worker in pair:
        worker.wait_for("replayed", 5 - worker.count("claimed"))

    assert sum(worker.count("claimed") for worker in pair) == 2
    assert len({body for worker in pair for body in worker.bodies()}) == 1


def test_another_process_refuses_the_key_with_a_different_body_in_flight_and_once_completed(workers):
    tenant = new_tenant()
    holder = workers(tenant=tenant, key="k", fingerprint="f", claims=1, wait_s=1)
    holder.wait_for("ready")
    holder.send("go")
    holder.wait_for("claimed")

    async def claim_with_another_body() -> object:
        return await idempotency.claim(tenant_id=tenant, key="k", fingerprint="g", wait_s=30)

    started = time.monotonic()
    with pytest.raises(idempotency.IdempotencyKeyReused):
        run(claim_with_another_body())
    assert time.monotonic() - started < 5  # at once, not after its 30 s wait
    holder.send("finish")
    holder.wait_for("finished")
    with pytest.raises(idempotency.IdempotencyKeyReused):
        run(claim_with_another_body())


def test_a_claim_is_renewed_while_its_process_lives_and_expires_within_the_lease_once_it_died(workers, settings):
    settings.EDGE_LEASE_S = LEASE_S
    tenant = new_tenant()
    holder = workers(tenant=tenant, key="k", fingerprint="f", claims=1, wait_s=1, env={"EDGE_LEASE_S": str(LEASE_S)})
    holder.wait_for("ready")
    holder.send("go")
    holder.wait_for("claimed")

    async def claim(wait_s: float) -> object:
        return await idempotency.claim(tenant_id=tenant, key="k", fingerprint="f", wait_s=wait_s)

    with pytest.raises(idempotency.IdempotencyKeyInUse):
        run(claim(wait_s=3 * LEASE_S))  # three leases long: the holder kept renewing it
    holder.kill()
    died = time.monotonic()
    taken_over = run(claim(wait_s=10 * LEASE_S))

    assert isinstance(taken_over, Claim)
    assert time.monotonic() - died < LEASE_S + 1.0  # the lease, a poll's backoff and a loaded machine's slack
