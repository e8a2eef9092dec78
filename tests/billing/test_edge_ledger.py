"""`manage.py edge_ledger quarantine`: the rows the database refused, listed, and re-ingested once fixed."""

from __future__ import annotations

import itertools
import os
import threading
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.billing.ledger import insert_rows
from apps.billing.models import LedgerEntry, Tenant
from apps.billing.quarantine import DIRECTORY_NAME, Quarantine
from apps.billing.rows import Refusal, Row
from tests.factories import make_tenant, unique
from tests.harness.gateway import free_port
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")

_tenant_ids = itertools.count(10**12 + int.from_bytes(os.urandom(3), "big") * 1000)


@pytest.fixture
def quarantine(tmp_path: Path, settings: Any) -> Quarantine:
    settings.EDGE_LEDGER_SPOOL_DIR = tmp_path / "spool"
    return Quarantine(tmp_path / "spool" / DIRECTORY_NAME)


def edge_ledger(*args: str) -> str:
    out = StringIO()
    call_command("edge_ledger", "quarantine", *args, stdout=out)
    return out.getvalue()


def ledger_row(tenant_id: int | None = None, **values: Any) -> Row:
    if tenant_id is None:
        tenant_id = make_tenant().pk
    return {"request_id": unique("req-cmd"), "tenant_id": tenant_id, "api_key_id": None, "endpoint": "chat.completions",
            "public_model": "m", "stream": False, "status": "ok", "http_status": 200,
            "created_at": "2026-12-01T10:00:00+00:00", "latency_ms": 3, "prompt_tokens": 10, **values}


def quarantined_ids(quarantine: Quarantine) -> list[str]:
    return [str(entry.row["request_id"]) for entry in quarantine.entries() if entry.row is not None]


def test_it_lists_each_quarantined_row_with_when_its_request_id_tenant_and_reason(quarantine):
    assert "is empty" in edge_ledger("list")
    orphaned, hostile = ledger_row(tenant_id=next(_tenant_ids)), ledger_row(public_model="x\x00y")
    quarantine.add(insert_rows([orphaned, hostile]))  # as the spool does

    lines = edge_ledger("list").splitlines()

    assert lines[0].split() == ["quarantined", "at", "request", "id", "tenant", "id", "reason"]
    by_request = {line.split()[1]: line for line in lines[1:-1]}
    assert set(by_request) == {orphaned["request_id"], hostile["request_id"]}
    assert str(orphaned["tenant_id"]) in by_request[orphaned["request_id"]]
    assert "violates foreign key constraint" in by_request[orphaned["request_id"]]
    assert "cannot contain NUL" in by_request[hostile["request_id"]]
    assert by_request[hostile["request_id"]].split()[0].startswith("20")  # when: an ISO 8601 time
    assert lines[-1].startswith("2 quarantined rows")


def test_it_reingests_a_row_once_its_tenant_exists_and_not_before(quarantine):
    row = ledger_row(tenant_id=next(_tenant_ids))
    quarantine.add(insert_rows([row]))

    output = edge_ledger("reingest")

    assert "0 rows re-ingested" in output and f"still refused: {row['request_id']}: IntegrityError" in output
    [entry] = quarantine.entries()
    assert entry.record is not None and "retried_at" in entry.record and "foreign key" in entry.record["reason"]

    Tenant.objects.create(pk=row["tenant_id"], slug=unique("late-tenant"), name="Late")
    assert "1 rows would be re-ingested" in edge_ledger("reingest", "--dry-run")
    assert quarantined_ids(quarantine) == [row["request_id"]]
    assert not LedgerEntry.objects.filter(request_id=row["request_id"]).exists()

    assert "1 rows re-ingested" in edge_ledger("reingest")
    assert LedgerEntry.objects.get(request_id=row["request_id"]).tenant_id == row["tenant_id"]
    assert quarantine.entries() == [] and quarantine.files() == []
    assert "0 rows re-ingested" in edge_ledger("reingest")  # idempotent


def test_it_reingests_a_row_an_operator_fixed_by_hand_and_keeps_what_is_still_wrong(quarantine):
    hostile, negative = ledger_row(public_model="x\x00y"), ledger_row(prompt_tokens=-3)
    quarantine.add(insert_rows([hostile, negative]))
    [path] = quarantine.files()
    path.write_bytes(path.read_bytes().replace(b"x\\u0000y", b"xy") + b'{"row": broken by an edit\n')

    output = edge_ledger("reingest")

    assert "1 rows re-ingested" in output and f"still refused: {negative['request_id']}" in output
    assert "not a quarantine entry, kept as it is" in output
    assert LedgerEntry.objects.get(request_id=hostile["request_id"]).public_model == "xy"
    assert quarantined_ids(quarantine) == [negative["request_id"]]
    assert b'{"row": broken by an edit\n' in path.read_bytes()


def test_it_lets_rows_already_in_the_ledger_leave_without_counting_them_twice(quarantine):
    row = ledger_row()
    insert_rows([row])
    quarantine.add([Refusal(row, "refused once, committed since")])

    assert "1 rows re-ingested" in edge_ledger("reingest")

    assert LedgerEntry.objects.filter(request_id=row["request_id"]).count() == 1
    assert quarantine.entries() == []


def test_it_changes_nothing_while_the_database_is_unreachable(quarantine):
    row = ledger_row(tenant_id=next(_tenant_ids))
    quarantine.add(insert_rows([row]))
    [path] = quarantine.files()
    before = path.read_bytes()
    reachable = connection.settings_dict
    connection.settings_dict = {**reachable, "PORT": str(free_port())}
    connection.close()
    try:
        with pytest.raises(CommandError, match="cannot take rows now"):
            edge_ledger("reingest")
    finally:
        connection.settings_dict = reachable
        connection.close()

    assert path.read_bytes() == before


def test_a_row_quarantined_while_a_reingest_holds_the_file_is_kept(tmp_path):
    quarantine = Quarantine(tmp_path)
    quarantine.add([Refusal({"request_id": "req_1"}, "refused")])
    [path] = quarantine.files()
    writer = threading.Thread(target=quarantine.add, args=([Refusal({"request_id": "req_2"}, "refused")],))

    def refuse_again_while_a_writer_waits(rows: list[Row]) -> list[Refusal]:
        writer.start()
        wait_until(lambda: waiting_for_lock(path), what="the writer waiting for the file's lock")
        return [Refusal(row, "still refused") for row in rows]

    quarantine.reingest(refuse_again_while_a_writer_waits, dry_run=False)  # rewrites the file the writer opened
    writer.join(5)

    assert sorted(quarantined_ids(quarantine)) == ["req_1", "req_2"]


def waiting_for_lock(path: Path) -> bool:
    """Someone is blocked on a lock of ``path`` (Linux lists waiters in /proc/locks after "->")."""
    inode = f":{os.stat(path).st_ino} "
    return any("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines())


def test_it_escapes_control_characters_in_what_it_lists(quarantine):
    quarantine.add([Refusal(ledger_row(request_id="req\x00\x1b[31m"), "refused")])

    listed = edge_ledger("list")

    assert "req\\x00\\x1b[31m" in listed and "\x00" not in listed and "\x1b" not in listed

