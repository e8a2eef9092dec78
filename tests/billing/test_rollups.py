"""Rollups sum the ledger exactly, whoever writes it; re-rating corrects a period with adjustment rows and
never edits one; a rebuild from the ledger gives back the rows the writers made."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from apps.billing.ledger import insert_rows
from apps.billing.models import ApiKey, DailyRollup, HourlyRollup, LedgerEntry, Tenant
from apps.billing.quarantine import DIRECTORY_NAME, Quarantine
from apps.billing.rerate import rerate
from apps.billing.rollup_checks import ledger_sums, rebuild_rollups, rollup_sums, verify_rollups
from apps.billing.rollups import MEASURES
from apps.billing.rows import Row
from apps.billing.services import record_adjustment
from apps.routing.models import Deployment
from apps.routing.price_versions import set_prices
from apps.routing.prices import Prices
from tests.factories import make_key, make_route, make_tenant, unique

pytestmark = pytest.mark.usefixtures("live_db")

START = datetime(2026, 10, 5, 22, tzinfo=UTC)  # a period of its own: rows span two hours and two days
END = START + timedelta(hours=4)
METERS = ("input_cost_usd", "cached_input_cost_usd", "cache_write_cost_usd", "output_cost_usd")


@pytest.fixture
def owner() -> tuple[Tenant, ApiKey, Deployment]:
    tenant = make_tenant()
    route = make_route("http://127.0.0.1:9/v1", input_price="0.15", output_price="0.60", cached_price="0.075",
                       cache_write_price="0.1875")
    return tenant, make_key(tenant)[0], route.deployment


def request_row(owner: tuple[Tenant, ApiKey, Deployment], minutes: int, **values: Any) -> Row:
    """A request row the way the gateway would cost it at 0.15/0.60/0.075/0.1875, ``minutes`` after START."""
    tenant, key, deployment = owner
    prompt, completion = values.pop("prompt_tokens", 1234), values.pop("completion_tokens", 567)
    cached, written = values.pop("cached_tokens", 333), values.pop("cache_write_tokens", 111)
    cost = ((prompt - cached - written) * Decimal("0.15") + cached * Decimal("0.075") + written * Decimal("0.1875")
            + completion * Decimal("0.60")) / 1_000_000
    return {
        "request_id": unique("req-roll"), "tenant_id": tenant.pk, "api_key_id": key.pk, "endpoint": "chat.completions",
        "public_model": deployment.model.name, "provider": "p", "deployment_id": deployment.pk, "stream": False,
        "status": "ok", "http_status": 200, "created_at": (START + timedelta(minutes=minutes)).isoformat(),
        "latency_ms": 40 + minutes, "ttft_ms": None, "prompt_tokens": prompt, "completion_tokens": completion,
        "cached_tokens": cached, "cache_write_tokens": written, "usage_source": "provider",
        "input_usd_per_mtok": "0.15", "output_usd_per_mtok": "0.60", "cached_input_usd_per_mtok": "0.075",
        "cache_write_usd_per_mtok": "0.1875", "cost_usd": f"{cost.quantize(Decimal('1e-10')):f}", **values,
    }


def mixed_rows(owner: tuple[Tenant, ApiKey, Deployment]) -> list[Row]:
    return [
        request_row(owner, 5),
        request_row(owner, 50, stream=True, ttft_ms=12, prompt_tokens=7, completion_tokens=3, cached_tokens=0),
        request_row(owner, 70, status="error", http_status=502, prompt_tokens=0, completion_tokens=0,
                    cached_tokens=0, cache_write_tokens=0),
        request_row(owner, 95, status="cancelled", http_status=499, usage_source="estimated", completion_tokens=9),
        request_row(owner, 130, cache_status="hit-l2", deployment_id=None, cost_usd="0", cost_avoided_usd="0.0004321",
                    input_usd_per_mtok=None, output_usd_per_mtok=None, cached_input_usd_per_mtok=None,
                    cache_write_usd_per_mtok=None),
        request_row(owner, 135, prompt_tokens=3, cached_tokens=9, cache_write_tokens=9),  # parts over the whole
    ]


def tenant_rows(model: type[HourlyRollup | DailyRollup], tenant: Tenant) -> set[tuple[Any, ...]]:
    columns = ("bucket", "tenant_id", "api_key_id", "endpoint", "public_model", "provider", "deployment_id",
               "price_version_id", *MEASURES)
    return set(model.objects.filter(tenant_id=tenant.pk).values_list(*columns))


def of_tenant(sums: dict[tuple[int, datetime], Any], tenant: Tenant) -> dict[tuple[int, datetime], Any]:
    return {key: value for key, value in sums.items() if key[0] == tenant.pk}


def test_rollups_sum_to_the_ledger_to_the_tenth_decimal_per_hour_and_per_day(owner):
    assert insert_rows(mixed_rows(owner)) == []

    for period in ("hour", "day"):
        ledger = of_tenant(ledger_sums(start=START, end=END + timedelta(days=1), period=period), owner[0])
        assert ledger == of_tenant(rollup_sums(start=START, end=END + timedelta(days=1), period=period), owner[0])
        assert len(ledger) == (3 if period == "hour" else 2)
    assert [drift for drift in verify_rollups(start=START, end=END) if drift.tenant_id == owner[0].pk] == []
    hourly = HourlyRollup.objects.filter(tenant_id=owner[0].pk)
    assert sum(row.requests_ok + row.requests_error + row.requests_cancelled for row in hourly) == 6
    assert sum(row.cache_hits for row in hourly) == 1
    assert sum(row.ttft_count for row in hourly) == 1


def test_the_four_meters_split_each_rows_cost_exactly(owner):
    rows = [request_row(owner, minute, prompt_tokens=1000 + 7 * minute, completion_tokens=13 * minute,
                        cached_tokens=minute, cache_write_tokens=3) for minute in range(1, 40)]
    assert insert_rows(rows) == []

    for rollup in HourlyRollup.objects.filter(tenant_id=owner[0].pk):
        assert sum(getattr(rollup, meter) for meter in METERS) == rollup.cost_usd
        assert rollup.cached_input_cost_usd > 0 and rollup.cache_write_cost_usd > 0
    expected_input = sum(((1000 + 7 * m - m - 3) * Decimal("0.15") / 1_000_000).quantize(Decimal("1e-10"), "ROUND_DOWN")
                         for m in range(1, 40))
    assert HourlyRollup.objects.get(tenant_id=owner[0].pk).input_cost_usd == expected_input


def test_a_row_written_twice_is_counted_once_and_a_refused_row_not_at_all(owner):
    row = request_row(owner, 1)
    refused = request_row(owner, 2, prompt_tokens=-1)

    assert [refusal.row for refusal in insert_rows([row, dict(row), refused])] == [refused]
    assert insert_rows([dict(row)]) == []

    rollup = HourlyRollup.objects.get(tenant_id=owner[0].pk)
    assert (rollup.requests_ok, rollup.prompt_tokens) == (1, 1234)
    assert DailyRollup.objects.get(tenant_id=owner[0].pk).requests_ok == 1


def test_an_adjustment_adds_to_adjustment_usd_of_its_hour_and_leaves_cost_usd_alone(owner):
    row = request_row(owner, 1)
    insert_rows([row])
    adjustment = record_adjustment(entry=LedgerEntry.objects.get(request_id=row["request_id"]),
                                   cost_delta_usd=Decimal("-0.0000001234"), note="goodwill")

    rollup = HourlyRollup.objects.get(tenant_id=owner[0].pk, bucket=adjustment.created_at.replace(
        minute=0, second=0, microsecond=0))
    assert (rollup.adjustments, rollup.adjustment_usd, rollup.cost_usd) == (1, Decimal("-0.0000001234"), Decimal(0))
    now = datetime.now(UTC)
    assert [d for d in verify_rollups(start=now - timedelta(hours=1), end=now) if d.tenant_id == owner[0].pk] == []


def test_a_rebuild_gives_the_same_rows_as_the_writers_made(owner):
    insert_rows(mixed_rows(owner))
    before = tenant_rows(HourlyRollup, owner[0]), tenant_rows(DailyRollup, owner[0])

    rebuild_rollups(start=START, end=END)

    assert (tenant_rows(HourlyRollup, owner[0]), tenant_rows(DailyRollup, owner[0])) == before


def test_a_rebuild_brings_in_rows_written_past_the_rollups_and_verify_finds_them_first(owner):
    row = request_row(owner, 10)
    with connection.cursor() as cursor:  # as a gateway of the release before rollups would
        cursor.execute(
            f"INSERT INTO {LedgerEntry._meta.db_table} (request_id, kind, tenant_id, api_key_id, endpoint, "
            "public_model, provider, upstream_model, stream, status, http_status, error_type, prompt_tokens, "
            "completion_tokens, cached_tokens, usage_source, cost_usd, latency_ms, created_at, note) "
            "VALUES (%s, 'request', %s, %s, '', '', '', '', false, 'ok', 200, '', 5, 6, 0, 'provider', 0.25, 9, %s, "
            "'')",
            [row["request_id"], row["tenant_id"], row["api_key_id"], START + timedelta(minutes=10)],
        )

    [drift] = [drift for drift in verify_rollups(start=START, end=END) if drift.tenant_id == owner[0].pk]
    assert drift.bucket == START and drift.differences["cost_usd"] == (Decimal("0.25"), 0)

    call_command("edge_rollup", "--rebuild", "--from", START.isoformat(), "--to", END.isoformat())

    assert [drift for drift in verify_rollups(start=START, end=END) if drift.tenant_id == owner[0].pk] == []
    assert [drift for drift in verify_rollups(start=START, end=END, period="day")
            if drift.tenant_id == owner[0].pk] == []


def test_a_rebuild_refuses_a_period_that_is_not_whole_hours():
    with pytest.raises(ValueError, match="whole hours"):
        rebuild_rollups(start=START + timedelta(minutes=5), end=END)


def net_costs(request_ids: list[str]) -> dict[str, Decimal]:
    rows = LedgerEntry.objects.filter(request_id__in=request_ids)
    return {row.request_id: row.cost_usd + sum(a.cost_usd for a in row.adjustments.all()) for row in rows}


def test_a_rerate_writes_one_adjustment_per_changed_request_and_edits_no_row(owner):
    rows = [request_row(owner, minute) for minute in (1, 2, 3)] + [request_row(
        owner, 4, status="error", prompt_tokens=0, completion_tokens=0, cached_tokens=0, cache_write_tokens=0)]
    insert_rows(rows)
    ids = [row["request_id"] for row in rows]
    before = list(LedgerEntry.objects.filter(request_id__in=ids).order_by("id").values())
    dearer = Prices(input_usd_per_mtok=Decimal("0.30"), output_usd_per_mtok=Decimal("1.20"),
                    cached_input_usd_per_mtok=Decimal("0.15"), cache_write_usd_per_mtok=Decimal("0.375"))

    done = rerate(deployment_id=owner[2].pk, start=START, end=END, prices=dearer, note="provider doubled prices")

    assert (done.requests, done.adjustments) == (4, 3)  # the error row cost nothing either way
    assert list(LedgerEntry.objects.filter(request_id__in=ids).order_by("id").values()) == before
    adjustments = LedgerEntry.objects.filter(adjusts_id__in=ids)
    assert {a.note for a in adjustments} == {"provider doubled prices"}
    assert {a.input_usd_per_mtok for a in adjustments} == {Decimal("0.30")}
    doubled = Decimal(rows[0]["cost_usd"]) * 2
    assert set(net_costs(ids[:3]).values()) == {doubled}
    assert done.amount_usd == Decimal(rows[0]["cost_usd"]) * 3
    now = datetime.now(UTC)
    assert [d for d in verify_rollups(start=now - timedelta(hours=1), end=now) if d.tenant_id == owner[0].pk] == []


def test_rerating_twice_bills_the_second_prices_once(owner):
    rows = [request_row(owner, minute) for minute in (1, 2)]
    insert_rows(rows)
    ids = [row["request_id"] for row in rows]
    version = set_prices(deployment=owner[2], input_usd_per_mtok=Decimal("0.5"), output_usd_per_mtok=Decimal("2"),
                         effective_from=START, note="the provider's new prices")
    kwargs: dict[str, Any] = {"deployment_id": owner[2].pk, "start": START, "end": END, "note": "new prices"}

    first = rerate(price_version=version, **kwargs)
    again = rerate(price_version=version, **kwargs)
    record_adjustment(entry=LedgerEntry.objects.get(request_id=ids[0]), cost_delta_usd=Decimal("1"), note="oops")
    after_a_manual_correction = rerate(price_version=version, **kwargs)

    expected = ((1234 * Decimal("0.5") + 567 * Decimal("2")) / 1_000_000).quantize(Decimal("1e-10"))
    assert (first.adjustments, again.adjustments, after_a_manual_correction.adjustments) == (2, 0, 1)
    assert net_costs(ids) == dict.fromkeys(ids, expected)
    assert LedgerEntry.objects.filter(adjusts_id__in=ids, price_version_id=version.pk).count() == 3


def test_a_rerate_refuses_another_deployments_version_and_a_period_backwards(owner):
    other = make_route("http://127.0.0.1:9/v1").deployment
    version = other.price_versions.get()
    with pytest.raises(ValueError, match="not deployment"):
        rerate(deployment_id=owner[2].pk, start=START, end=END, price_version=version, note="x")
    with pytest.raises(ValueError, match="period"):
        rerate(deployment_id=owner[2].pk, start=END, end=START, price_version=owner[2].price_versions.get(), note="x")


def test_edge_rerate_rerates_a_period_from_the_command_line(owner, capsys):
    insert_rows([request_row(owner, 1)])

    call_command("edge_rerate", "--deployment", str(owner[2].pk), "--from", START.isoformat(), "--to",
                 END.isoformat(), "--input", "0", "--output", "0", "--note", "free month")
    call_command("edge_rerate", "--deployment", str(owner[2].pk), "--from", START.isoformat(), "--to",
                 END.isoformat(), "--input", "0", "--output", "0", "--note", "free month")

    output = capsys.readouterr().out.splitlines()
    assert output[0].startswith("1 requests re-rated, 1 adjustments written, -0.000")
    assert output[1] == "1 requests re-rated, 0 adjustments written, 0 USD in all"
    assert sum(net_costs(list(LedgerEntry.objects.filter(tenant=owner[0], kind="request")
                              .values_list("request_id", flat=True))).values()) == 0


def test_a_batch_of_many_statements_adds_every_row_once(owner):
    rows = [request_row(owner, minute % 230, prompt_tokens=100 + minute) for minute in range(437)]

    assert insert_rows(rows) == []

    assert [drift for drift in verify_rollups(start=START, end=END) if drift.tenant_id == owner[0].pk] == []
    assert sum(HourlyRollup.objects.filter(tenant_id=owner[0].pk).values_list("requests_ok", flat=True)) == 437


def test_rows_reingested_from_the_quarantine_join_the_rollups(owner, tmp_path, settings):
    settings.EDGE_LEDGER_SPOOL_DIR = tmp_path / "spool"
    quarantine = Quarantine(tmp_path / "spool" / DIRECTORY_NAME)
    row = request_row(owner, 1, public_model="x\x00y")
    quarantine.add(insert_rows([row]))
    assert not HourlyRollup.objects.filter(tenant_id=owner[0].pk).exists()
    fixed = quarantine.directory.joinpath(next(p.name for p in quarantine.directory.iterdir()))
    fixed.write_text(fixed.read_text().replace("x\\u0000y", "fixed"))

    call_command("edge_ledger", "quarantine", "reingest", stdout=io.StringIO())

    rollup = HourlyRollup.objects.get(tenant_id=owner[0].pk)
    assert (rollup.public_model, rollup.requests_ok, rollup.prompt_tokens) == ("fixed", 1, 1234)
