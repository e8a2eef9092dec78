#!/usr/bin/env python3
"""Benchmark the response cache: an L1 hit and an L2 hit against a miss, and the cache off.

    python bench/cache.py [--duration S] [--repeats N]

Same stack as bench/run.py (fake upstream and wrk on core 0, the server under test on core 1, a
throwaway SQLite database), plus a private redis-server on core 0. Two gateway processes: one as
deployed, and one with EDGE_CACHE_L1_MAX_BYTES=0, so that every lookup goes to Redis and every
answer is an L2 hit. Targets, each loaded in turn at c=1 and c=16, repeats interleaved:

    off      bench-model, whose policy has the cache off (x-edge-cache: bypass): today's request path
    miss     bench-cached, every request new: the L1 and L2 lookups, the flight lock, the provider
             call and both writes
    hit-l1   bench-cached, the same request again and again, answered from the process's LRU
    hit-l2   the same, on the gateway without an L1: answered from Redis

Each target is first checked to answer with the x-edge-cache value it claims to measure. Noise from
other work on the machine is not filtered here (bench/run.py does that): run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])

import httpx  # noqa: E402
from edge_db import BENCH_MODEL, CACHED_MODEL  # noqa: E402
from loadgen import Endpoint, Scenario, WrkResult, run_wrk  # noqa: E402
from servers import BenchError, Processes, Server, free_port  # noqa: E402
from stack import (  # noqa: E402
    UPSTREAM_CORE,
    gateway_environment,
    prepare_database,
    run_python,
    start_fake_upstream,
    start_gateway,
)

SCENARIOS = (Scenario("chat c=1", stream=False, connections=1), Scenario("chat c=16", stream=False, connections=16))
OVERHEAD_SAMPLES = 200
WARMUP_S = 1.0


@dataclass(frozen=True)
class Target:
    name: str
    server: Server
    endpoint: Endpoint
    expected: str  # the x-edge-cache value every answer must carry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported")
    args = parser.parse_args(argv)
    if not shutil.which("wrk") or not shutil.which("redis-server"):
        print("needs wrk and redis-server (apt-get install -y wrk redis-server)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="edge-cache-bench-"))
    try:
        with Processes(workdir) as processes:
            targets = start_stack(processes, workdir)
            report(measure(processes, targets, args), {t.name: overhead_ms(t) for t in targets})
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 2
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def start_stack(processes: Processes, workdir: Path) -> list[Target]:
    fake = start_fake_upstream(processes)
    redis_port = free_port()
    processes.spawn(["taskset", "-c", UPSTREAM_CORE, "redis-server", "--port", str(redis_port), "--save", "",
                     "--appendonly", "no", "--dir", str(workdir)], env=dict(os.environ), cwd=workdir,
                    log_path=workdir / "redis.log")
    env = gateway_environment(workdir, f"sqlite:///{workdir / 'edge.sqlite3'}")
    env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    key = prepare_database(env, upstream_url=fake.url)
    run_python([str(REPO / "bench" / "edge_db.py"), "cache"], env)
    gateway = start_gateway(processes, env)
    without_l1 = start_gateway(processes, {**env, "EDGE_CACHE_L1_MAX_BYTES": "0"})
    return [
        Target("off", gateway, Endpoint(gateway.url, BENCH_MODEL, key), "bypass"),
        Target("miss", gateway, Endpoint(gateway.url, CACHED_MODEL, key, unique=secrets.token_hex(4)), "miss"),
        Target("hit-l1", gateway, Endpoint(gateway.url, CACHED_MODEL, key), "hit-l1"),
        Target("hit-l2", without_l1, Endpoint(without_l1.url, CACHED_MODEL, key), "hit-l2"),
    ]


def post(target: Target, content: str) -> httpx.Response:
    body = {"model": target.endpoint.model, "messages": [{"role": "user", "content": content}]}
    return httpx.post(f"{target.endpoint.url}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {target.endpoint.key}"}, timeout=10)


def overhead_ms(target: Target) -> list[float]:
    """x-edge-overhead-ms of sequential requests, each checked to be what the target measures."""
    post(target, "hello")  # the answer the hit targets are served (stored on the first ask)
    samples = []
    for number in range(OVERHEAD_SAMPLES):
        response = post(target, f"sample {secrets.token_hex(4)} {number}" if target.endpoint.unique else "hello")
        if response.status_code != 200 or response.headers.get("x-edge-cache") != target.expected:
            raise BenchError(f"{target.name}: got {response.status_code} {response.headers.get('x-edge-cache')}, "
                             f"expected 200 {target.expected}")
        samples.append(float(response.headers["x-edge-overhead-ms"]))
    return samples


Results = dict[tuple[str, str], list[WrkResult]]


def measure(processes: Processes, targets: list[Target], args: argparse.Namespace) -> Results:
    for target in targets:
        overhead_ms(target)  # checks every target before it is loaded, and fills the caches
    results: Results = {}
    for _ in range(args.repeats):
        for scenario in SCENARIOS:
            for target in targets:
                run_wrk(processes, fresh(target.endpoint), scenario, duration_s=WARMUP_S)
                result = run_wrk(processes, fresh(target.endpoint), scenario, duration_s=args.duration)
                if problems := result.failures():
                    raise BenchError(f"{target.name} {scenario.name}: {', '.join(problems)}\n{result.output}")
                results.setdefault((scenario.name, target.name), []).append(result)
                print(f"  {scenario.name:<10} {target.name:<7} {result.rps:8.0f} req/s", file=sys.stderr)
    return results


def fresh(endpoint: Endpoint) -> Endpoint:
    """For the miss target, a token no earlier run used: wrk's request counter restarts every run."""
    return dataclasses.replace(endpoint, unique=secrets.token_hex(4)) if endpoint.unique else endpoint


def report(results: Results, overhead: dict[str, list[float]]) -> None:
    print(f"\n{'scenario':<10}  {'target':<7}  {'req/s':>6}  {'p50 ms':>7}  {'p99 ms':>7}  {'x miss req/s':>12}")
    for (scenario, target), runs in results.items():
        rps = statistics.median(run.rps for run in runs)
        miss_rps = statistics.median(run.rps for run in results[(scenario, "miss")])
        print(f"{scenario:<10}  {target:<7}  {rps:6.0f}  {statistics.median(r.p50_ms for r in runs):7.2f}  "
              f"{statistics.median(r.p99_ms for r in runs):7.2f}  {rps / miss_rps:11.2f}x")
    print(f"\nx-edge-overhead-ms over {OVERHEAD_SAMPLES} sequential requests (median / p99):")
    for name, samples in overhead.items():
        ordered = sorted(samples)
        print(f"  {name:<7} {statistics.median(ordered):.3f} / {ordered[int(len(ordered) * 0.99) - 1]:.3f}")


if __name__ == "__main__":
    sys.exit(main())
