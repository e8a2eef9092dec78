#!/usr/bin/env python3
"""Benchmark the gateway beside the floor and the fake upstream: ``python bench/run.py [--quick]``.

Core 0 runs the fake upstream and wrk; core 1 runs one server at a time under load (the gateway
and the floor both stay up, but only one is loaded at once). Each scenario is measured for every
target in turn, repeats interleaved, and the median is reported. bench/README.md explains each
figure. Any non-2xx answer, socket error or broken body aborts the run, and so does a ledger that
lost or invented a row: a benchmark of errors is worthless.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
    # Re-run under the project's venv: the children need its Django, uvicorn and httpx anyway.
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])

import httpx  # noqa: E402
from edge_db import BENCH_MODEL, UPSTREAM_MODEL  # noqa: E402
from interference import OwnCpu, Watch, own_cpu_by_core, reaped_children_cpu_s, wait_until_quiet  # noqa: E402
from loadgen import SCENARIOS, Endpoint, Scenario, WrkResult, run_wrk  # noqa: E402
from report import RSS_TARGET_MIB, Run, nearest_rank, ratios_table, results_table, summarise  # noqa: E402
from servers import BenchError, Processes, Server  # noqa: E402
from stack import (  # noqa: E402
    SERVER_CORE,
    UPSTREAM_CORE,
    gateway_database,
    gateway_environment,
    prepare_database,
    run_python,
    start_fake_upstream,
    start_floor,
    start_gateway,
)

WARMUP_S = 1.0  # per run, unmeasured: fills connection pools and caches at this concurrency
SETTLE_S = 1.0  # after each run, still counted: the run's tail (ledger flush, closing connections)
OVERHEAD_SAMPLES = 200
LEDGER_WAIT_S = 60.0
MAX_ATTEMPTS = 4  # per run, when other work on the machine disturbed the earlier ones
QUIET_WAIT_S = 120.0  # how long to wait for the cores to go idle before each run
PROFILE_S = 10.0  # py-spy recording per server (--profile)


@dataclass(frozen=True)
class Target:
    name: str  # "direct" (the fake upstream itself), "floor" or "gateway"
    server: Server
    endpoint: Endpoint


@dataclass
class GatewayTally:
    """What the gateway was sent, to check against its ledger: every request that reached it is a row."""

    answered: int = 0  # 2xx responses the clients read in full
    sent: int = 0  # also counts requests in flight when wrk stopped

    def add(self, answered: int, sent: int) -> None:
        self.answered += answered
        self.sent += sent


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so `kill` also runs the cleanup in finally blocks
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    workdir = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    succeeded = False
    try:
        check_tools(args)
        with gateway_database(args, workdir) as database_url, Processes(workdir) as processes:
            benchmark(args, processes, workdir, database_url)
        succeeded = True
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; every process the benchmark started is stopped (logs in {workdir})", file=sys.stderr)
        return 130
    finally:
        if succeeded and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 3 s runs, 1 repeat")
    parser.add_argument("--postgres", nargs="?", const="postgres://postgres@127.0.0.1:5432/edge_bench",
                        metavar="URL", help="use Postgres (database created and dropped by the run) instead of SQLite")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                        help="run only this scenario (repeatable)")
    parser.add_argument("--profile", nargs="?", const="chat c=16", choices=[s.name for s in SCENARIOS],
                        metavar="SCENARIO", help="afterwards, profile the floor and the gateway with py-spy under "
                        "this load (default: chat c=16) and compare where their CPU goes")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the gateway, e.g. EDGE_LEDGER_FSYNC=true (repeatable)")
    parser.add_argument("--no-limits", action="store_true",
                        help="give the benchmark key no rate limits and no budget (default: limits far above the load)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, profiles)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.repeats = 3.0, 1
    if args.profile:
        args.keep = True  # the flame graph and raw stacks are in the temporary directory
    if args.duration <= 0 or args.repeats < 1:
        parser.error("--duration must be positive and --repeats at least 1")
    if any("=" not in item for item in args.gateway_env):
        parser.error("--gateway-env takes NAME=VALUE")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def check_tools(args: argparse.Namespace) -> None:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            package = "wrk" if tool == "wrk" else "util-linux"
            raise BenchError(f"`{tool}` is not installed (apt-get install -y {package})")
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        raise BenchError("needs cores 0 and 1: load and upstream on one, the server under test alone on the other")


def benchmark(args: argparse.Namespace, processes: Processes, workdir: Path, database_url: str) -> None:
    fake = start_fake_upstream(processes)
    gateway_env = gateway_environment(workdir, database_url) | dict(i.split("=", 1) for i in args.gateway_env)
    gateway_key = prepare_database(gateway_env, upstream_url=fake.url, limited=not args.no_limits)
    gateway = start_gateway(processes, gateway_env)
    floor = start_floor(processes, upstream_url=fake.url)
    targets = [Target("direct", fake, Endpoint(fake.url, UPSTREAM_MODEL, "sk-direct"))]
    if floor is not None:
        targets.append(Target("floor", floor, Endpoint(floor.url, BENCH_MODEL, "sk-floor")))
    targets.append(Target("gateway", gateway, Endpoint(gateway.url, BENCH_MODEL, gateway_key)))
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]

    tally = GatewayTally()
    runs = measure_all(processes, targets, scenarios, args, tally)
    overhead = sample_overhead(gateway, gateway_key)
    tally.add(len(overhead), len(overhead))
    ledger = check_ledger(gateway, gateway_env, tally)

    print_report(args, runs, scenarios, overhead, ledger, tally, floor_missing=floor is None)
    if args.profile:
        profile(processes, targets, workdir, scenario_name=args.profile)


# --- measuring ------------------------------------------------------------------------------------


def measure_all(processes: Processes, targets: list[Target], scenarios: list[Scenario],
                args: argparse.Namespace, tally: GatewayTally) -> dict[tuple[str, str], list[Run]]:
    runs: dict[tuple[str, str], list[Run]] = {}
    own_cpu = own_cpu_by_core([
        (int(UPSTREAM_CORE), reaped_children_cpu_s),  # wrk, once it has exited
        *((int(SERVER_CORE if t.name != "direct" else UPSTREAM_CORE), t.server.cpu_seconds) for t in targets),
    ])
    for repeat in range(1, args.repeats + 1):
        for scenario in scenarios:
            for target in targets:
                run = measure(processes, target, scenario, args.duration, tally, own_cpu)
                runs.setdefault((target.name, scenario.name), []).append(run)
                print(f"[{repeat}/{args.repeats}] {scenario.name:<11} {target.name:<7} {run.wrk.rps:7.0f} req/s"
                      f"  p50 {run.wrk.p50_ms:6.2f} ms  p99 {run.wrk.p99_ms:6.2f} ms"
                      f"  CPU {run.cpu_ms_per_request:5.2f} ms/req (sys {run.sys_ms_per_request:4.2f}, off-loop "
                      f"{run.off_loop_ms_per_request:4.2f})  foreign {run.foreign}", file=sys.stderr, flush=True)
    return runs


def measure(processes: Processes, target: Target, scenario: Scenario, duration_s: float,
            tally: GatewayTally, own_cpu: OwnCpu) -> Run:
    """Warm up, then load and watch the cores; a run disturbed by other work is done again."""
    server = target.server
    # The direct target runs wholly on the load core; the others need both cores undisturbed.
    judged = {core: read for core, read in own_cpu.items() if target.name != "direct" or core == int(UPSTREAM_CORE)}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wait_until_quiet(judged, max_wait_s=QUIET_WAIT_S, report=_progress)
        server.check_alive()
        warmup = run_wrk(processes, target.endpoint, scenario, duration_s=WARMUP_S)
        _fail_on_errors(target, scenario, warmup, "warm-up")
        watch = Watch(judged)
        cpu_before = server.cpu_times()
        result = run_wrk(processes, target.endpoint, scenario, duration_s=duration_s)
        time.sleep(SETTLE_S)
        cpu = server.cpu_times() - cpu_before
        foreign = watch.stop()
        if target.name == "gateway":
            tally.add(warmup.ok + result.ok, warmup.sent + result.sent)
        _fail_on_errors(target, scenario, result, "run")
        per_request_ms = 1000 / result.completed
        run = Run(target=target.name, scenario=scenario, wrk=result, cpu_ms_per_request=cpu.total_s * per_request_ms,
                  sys_ms_per_request=cpu.system_s * per_request_ms,
                  # Ticks are read from two files a moment apart: clamp the -0.0 that can leave.
                  off_loop_ms_per_request=max(0.0, cpu.total_s - cpu.loop_s) * per_request_ms,
                  rss_mib=server.rss_mib(), foreign=foreign, attempts=attempt)
        if not foreign.disturbed():
            return run
        _progress(f"  {target.name}, {scenario.name}: other work on the cores ({foreign}); "
                  + ("measuring again" if attempt < MAX_ATTEMPTS else "kept, marked disturbed"))
    return run


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fail_on_errors(target: Target, scenario: Scenario, result: WrkResult, phase: str) -> None:
    target.server.check_alive()
    if result.failures():
        raise BenchError(
            f"{target.name}, {scenario.name} ({phase}): {', '.join(result.failures())}\n"
            f"--- wrk ---\n{result.output}\n--- {target.name} log (tail) ---\n{target.server.log_tail()}"
        )


def sample_overhead(gateway: Server, key: str) -> list[float]:
    """x-edge-overhead-ms of sequential chat requests, after the load (the gateway's own view)."""
    body = {"model": BENCH_MODEL, "messages": [{"role": "user", "content": "hello"}]}
    samples = []
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for _ in range(OVERHEAD_SAMPLES):
            response = client.post("/v1/chat/completions", json=body)
            if response.status_code != 200 or "choices" not in response.json():
                raise BenchError(f"overhead sample got {response.status_code}: {response.text[:500]}")
            samples.append(float(response.headers["x-edge-overhead-ms"]))
    return samples


def check_ledger(gateway: Server, env: dict[str, str], tally: GatewayTally) -> dict[str, int]:
    """Wait until the gateway reports no ledger backlog, then count the rows it committed."""
    deadline = time.monotonic() + LEDGER_WAIT_S
    while True:
        operator = {"Authorization": f"Bearer {env['EDGE_HEALTH_TOKEN']}"}  # the detail is for operators only
        backlog = httpx.get(f"{gateway.url}/health", headers=operator, timeout=10).json()["checks"]["ledger"]["backlog"]
        if backlog == 0:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"the ledger still had {backlog} rows to commit after {LEDGER_WAIT_S:.0f}s")
        time.sleep(0.25)
    counts: dict[str, int] = json.loads(run_python([str(REPO / "bench" / "edge_db.py"), "ledger"], env))
    if not tally.answered <= counts["total"] <= tally.sent or counts.get("error", 0):
        raise BenchError(
            f"ledger incomplete: {counts} for {tally.answered} answered and {tally.sent} sent gateway requests"
        )
    return counts


# --- output ---------------------------------------------------------------------------------------


def print_report(args: argparse.Namespace, runs: dict[tuple[str, str], list[Run]], scenarios: list[Scenario],
                 overhead: list[float], ledger: dict[str, int], tally: GatewayTally, *, floor_missing: bool) -> None:
    summaries = [summarise(runs[key]) for key in sorted(runs, key=lambda k: _order(k, scenarios))]
    mode = "postgres" if args.postgres else "sqlite"
    extra = f", gateway env {' '.join(args.gateway_env)}" if args.gateway_env else ""
    print(f"\nLLM Edge benchmark, {time.strftime('%Y-%m-%d %H:%M')}: {args.duration:g} s per run, "
          f"median of {args.repeats}, database {mode}{extra}; server alone on core {SERVER_CORE}, "
          f"wrk and fake upstream on core {UPSTREAM_CORE}\n")
    print(results_table(summaries))
    if floor_missing:
        print("\nfloor skipped: ../shared/bench/floor_app.py not found")
    table, all_met = ratios_table(summaries, scenarios)
    print(f"\n{table}")
    gateway_rss = max(s.rss_mib for s in summaries if s.target == "gateway")
    print(f"\ngateway RSS {gateway_rss:.0f} MiB (target <= {RSS_TARGET_MIB:.0f} MiB per worker): "
          f"{'ok' if gateway_rss <= RSS_TARGET_MIB else 'ABOVE'}")
    print(f"x-edge-overhead-ms over {len(overhead)} sequential chat requests: "
          f"median {nearest_rank(overhead, 50):.2f}, p99 {nearest_rank(overhead, 99):.2f}")
    in_flight = ledger["total"] - tally.answered
    print(f"ledger: {ledger['total']} rows = {tally.answered} answered + {in_flight} in flight when wrk stopped "
          f"(at most {tally.sent - tally.answered}); by status {_by_status(ledger)}: complete")
    print(f"gateway/floor >= 0.8x in every scenario run: {'yes' if all_met and not floor_missing else 'NO'}")


def _order(key: tuple[str, str], scenarios: list[Scenario]) -> tuple[int, int]:
    target_order = {"direct": 0, "floor": 1, "gateway": 2}
    return [s.name for s in scenarios].index(key[1]), target_order[key[0]]


def _by_status(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in counts.items() if status != "total")


def profile(processes: Processes, targets: list[Target], workdir: Path, *, scenario_name: str) -> None:
    from profiling import profile_servers

    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    out_dir = workdir / f"profile-{scenario_name.replace(' ', '-').replace('=', '')}"
    out_dir.mkdir()
    recorded = [(t.name, t.server, t.endpoint) for t in targets if t.name in ("floor", "gateway")]
    _progress(f"profiling {', '.join(name for name, _, _ in recorded)} under {scenario.name}...")
    summary = profile_servers(processes, recorded, scenario, duration_s=PROFILE_S, out_dir=out_dir)
    print(f"\nprofile under {scenario.name} (py-spy, {PROFILE_S:g} s per server; flame graphs and raw stacks "
          f"in {out_dir}):\n{summary}")


if __name__ == "__main__":
    sys.exit(main())
