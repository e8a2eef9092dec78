#!/usr/bin/env python3
"""One L2 lookup from the async request path: django-redis (Django's ``cache.aget``) against redis.asyncio
through ``edge_project.redis_clients``, the choice apps/proxy/cache/redis_tier.py made.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/l2_lookup.py

django-redis 7 has no native async methods: ``aget`` is Django's ``sync_to_async`` around the sync
client, a thread hop per lookup. Prints the wall and CPU time per lookup, median of 3 rounds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.base")
LOOKUPS = 2000
VALUE = b"x" * 800  # about one short chat completion


async def per_lookup_us(call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    for _ in range(200):
        await call()
    rounds = []
    for _ in range(3):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(LOOKUPS):
            await call()
        rounds.append(((time.perf_counter() - wall) / LOOKUPS * 1e6, (time.process_time() - cpu) / LOOKUPS * 1e6))
    return statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)


async def main() -> None:
    from django.core.cache import cache

    from edge_project.redis_clients import async_redis

    client = async_redis()
    if client is None:
        raise SystemExit("set REDIS_URL")
    cache.set("edge-bench:l2-lookup", VALUE, 60)
    await client.set("edge-bench:l2-lookup-async", VALUE, ex=60)
    for name, call in (("django-redis cache.aget", lambda: cache.aget("edge-bench:l2-lookup")),
                       ("redis.asyncio get", lambda: client.get("edge-bench:l2-lookup-async"))):
        wall_us, cpu_us = await per_lookup_us(call)
        print(f"{name:<24} wall {wall_us:5.0f} us   CPU {cpu_us:5.0f} us   per lookup")


if __name__ == "__main__":
    import django

    django.setup()
    asyncio.run(main())
