"""Every key one admission script touches lies in one Redis Cluster hash slot: the tenant's."""

from __future__ import annotations

from redis.crc import key_slot

from apps.billing.admission.periods import PeriodCache
from apps.billing.admission.plan import check_of
from apps.billing.admission.redis_backend import marker_key, subject_keys
from tests.billing.admission.helpers import subject


def test_it_puts_a_keys_and_its_tenants_counters_in_the_tenants_hash_slot():
    key = subject(rpm=1, max_parallel=1, budget="1", tenant_id=7_000_001)
    tenant = subject("tenant", id=7_000_001, tpm=5, budget="10", period="day", timezone="Europe/Berlin")
    other = subject("tenant", id=7_000_002, rpm=1)
    periods, now_ms = PeriodCache(), 1_790_000_000_000
    keys = [name for one in (key, tenant) for name in subject_keys(check_of(one, now_ms, periods))]
    keys.append(marker_key(7_000_001, "req_1"))

    assert len(set(keys)) == 9 and all("{t7000001}" in name for name in keys)
    assert {key_slot(name.encode()) for name in keys} == {key_slot(b"{t7000001}")}
    assert key_slot(subject_keys(check_of(other, now_ms, periods))[0].encode()) != key_slot(b"{t7000001}")
