"""A process that claims one idempotency key, as a gateway process would: the other side of the tests
across processes (``python -m tests.idempotency.worker '<json>'``, driven by ``Worker`` in conftest.py).

It reads commands on stdin, one a line: ``go`` (start ``claims`` concurrent claims), ``finish`` and
``release`` (the claims it holds), ``exit``; and reports on stdout, one JSON object a line: ``ready``,
``claimed``, ``replayed`` (with the body), ``refused`` (with the code), ``waiting`` (how many of its
claims wait, whenever that changes), ``finished``, ``released``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import django
import orjson


def report(event: str, **fields: Any) -> None:
    sys.stdout.write(orjson.dumps({"event": event, **fields}).decode() + "\n")
    sys.stdout.flush()


async def main(tenant: int, key: str, fingerprint: str, claims: int, wait_s: float) -> None:
    from apps.proxy import idempotency

    held: list[idempotency.Claim] = []

    async def one(index: int) -> None:
        try:
            found = await idempotency.claim(tenant_id=tenant, key=key, fingerprint=fingerprint, wait_s=wait_s)
        except idempotency.IdempotencyError as error:
            report("refused", index=index, code=error.code)
            return
        if isinstance(found, idempotency.Claim):
            held.append(found)
            report("claimed", index=index)
        else:
            report("replayed", index=index, body=found.body.decode())

    async def report_waiting() -> None:
        last = -1
        while True:
            if (now := idempotency.waiting()) != last:
                report("waiting", count=now)
                last = now
            await asyncio.sleep(0.005)

    tasks: list[asyncio.Task[None]] = []
    reporter = asyncio.create_task(report_waiting())
    report("ready")
    while command := (await asyncio.to_thread(sys.stdin.readline)).strip():
        if command == "go":
            tasks = [asyncio.create_task(one(index)) for index in range(claims)]
        elif command == "finish":
            body = f'{{"answered by": {os.getpid()}}}'.encode()
            for claim in held:
                await idempotency.finish(claim, idempotency.StoredResponse(200, (), body, stream=False))
            report("finished", body=body.decode())
        elif command == "release":
            for claim in held:
                idempotency.release(claim)
            report("released")
        elif command == "exit":
            break
    await asyncio.gather(*tasks)
    reporter.cancel()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.test")
    django.setup()
    options = orjson.loads(sys.argv[1])
    asyncio.run(main(options["tenant"], options["key"], options["fingerprint"], options["claims"], options["wait_s"]))
