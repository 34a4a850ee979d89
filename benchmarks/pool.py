#!/usr/bin/env python3
"""IsolatedPool side by side with other process pools: `python benchmarks/pool.py [--quick]
[--json]`.

For `pwsup.IsolatedPool`, `concurrent.futures.ProcessPoolExecutor`, `pebble.ProcessPool`
and `loky.ProcessPoolExecutor` (each with 2 workers, warm), on the same tasks:

- round trip: submit one trivial call (returns 42) and wait for its result; one call of
  each pool per round, so a busy machine slows every pool alike; median over many. Then
  the same with the caller and its workers pinned to one CPU (`sched_setaffinity`): on a
  small VM, waking a process on another, idle vCPU costs tens of microseconds, and a
  round trip has at least two such wake-ups (the worker, then the caller); on one CPU
  what is left is each pool's own work;
- throughput: 10,000 small calls (`x * 2`) submitted at once, time until the last result;
- a worker SIGKILLed mid-task: 6 tasks of 0.3 s and one that SIGKILLs its own worker:
  how many of the 6 failed too, and whether the pool still runs a task afterwards;
- a task that never returns (it starts a child and a setsid'd child, then sleeps): with a
  1 s per-task timeout where the pool offers one (pwsup, pebble; ProcessPoolExecutor and
  loky have none, so the caller stops waiting after 1 s): whether the worker, the child
  and the setsid'd child are gone 3 s later (all of them are SIGKILLed by this script
  afterwards, so nothing outlives it).

Peers that are not importable get a row saying so (this script installs nothing;
`benchmarks/run.py` runs it as its `pool` benchmark with the benchmark venv's python, where
pebble and loky are installed). Prints a markdown table, or with --json every figure
measured. Exits non-zero only if a pool fails a healthy task, never because of the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pwsup import IsolatedPool

WORKERS = 2
FULL = {"rounds": 5, "round_trips": 200, "throughput_calls": 10_000}
QUICK = {"rounds": 1, "round_trips": 30, "throughput_calls": 1_000}
"""Per round and pool: round trips timed (after warming up), then one throughput run."""
HANG_TIMEOUT = 1.0
SETTLE = 3.0
"""After a never-returning task's timeout, how long its processes are given to be gone."""
PWSUP = "pwsup IsolatedPool"
PPE = "ProcessPoolExecutor"
PEBBLE = "pebble ProcessPool"
LOKY = "loky ProcessPoolExecutor"


# -- the tasks (module level: every pool pickles them by name) -----------------------------------


def trivial() -> int:
    return 42


def small(x: int) -> int:
    return x * 2


def nap(i: int) -> int:
    time.sleep(0.3)
    return i


def kill_own_worker() -> None:
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)


def never_return(report: str) -> None:
    stay = subprocess.Popen(["sleep", "60"])
    away = subprocess.Popen(["sleep", "60"], start_new_session=True)
    Path(report).write_text(f"{os.getpid()} {stay.pid} {away.pid}\n")
    time.sleep(60)


# -- the pools ---------------------------------------------------------------------------------


class Pool:
    """One pool under test: how to make it, submit to it, and give a task a timeout."""

    def __init__(self, name: str, make: Callable[[float | None], Any],
                 submit: Callable[[Any, Callable[..., Any], tuple[Any, ...], float | None], Any],
                 has_timeout: bool) -> None:
        self.name = name
        self.make = make
        self.submit = submit
        self.has_timeout = has_timeout


def _executor_submit(pool: Executor, fn: Callable[..., Any], args: tuple[Any, ...],
                     timeout: float | None) -> Any:
    return pool.submit(fn, *args)


def pools() -> dict[str, Pool | None]:
    found: dict[str, Pool | None] = {
        PWSUP: Pool(PWSUP, lambda t: IsolatedPool(WORKERS, timeout=t, grace=1.0),
                    _executor_submit, True),
        PPE: Pool(PPE, lambda t: ProcessPoolExecutor(WORKERS), _executor_submit, False),
        PEBBLE: None,
        LOKY: None,
    }
    with contextlib.suppress(ImportError):
        pebble = importlib.import_module("pebble")
        found[PEBBLE] = Pool(PEBBLE, lambda t: pebble.ProcessPool(max_workers=WORKERS),
                             lambda p, fn, args, t: p.schedule(fn, args=args, timeout=t),
                             True)
    with contextlib.suppress(ImportError):
        loky = importlib.import_module("loky")
        found[LOKY] = Pool(LOKY, lambda t: loky.ProcessPoolExecutor(max_workers=WORKERS),
                           _executor_submit, False)
    return found


def close(pool: Any) -> None:
    if hasattr(pool, "shutdown"):
        pool.shutdown(wait=True)
    else:  # pebble
        pool.close()
        pool.join()


# -- speed -------------------------------------------------------------------------------------


def round_trips(spec: Pool, calls: int) -> list[float]:
    """Milliseconds per round trip of `calls` calls, after warming every worker up."""
    pool = spec.make(None)
    try:
        for future in [spec.submit(pool, trivial, (), None) for _ in range(4 * WORKERS)]:
            check(future.result(60), 42)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            value = spec.submit(pool, trivial, (), None).result(60)
            times.append((time.perf_counter() - start) * 1000)
            check(value, 42)
        return times
    finally:
        close(pool)


def throughput(spec: Pool, calls: int) -> float:
    """Calls per second: `calls` small calls submitted at once, until the last result."""
    pool = spec.make(None)
    try:
        for future in [spec.submit(pool, trivial, (), None) for _ in range(4 * WORKERS)]:
            check(future.result(60), 42)
        start = time.perf_counter()
        futures = [spec.submit(pool, small, (i,), None) for i in range(calls)]
        values = [future.result(600) for future in futures]
        elapsed = time.perf_counter() - start
    finally:
        close(pool)
    check(values, [2 * i for i in range(calls)])
    return calls / elapsed


def speed_alone(name: str, what: str, count: int) -> Any:
    """One speed measurement of one pool in a fresh interpreter of its own (this script,
    `--alone`), so that no other pool's threads share its GIL and its CPU time."""
    result = subprocess.run([sys.executable, __file__, "--alone", name, what, str(count)],
                            capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{name} {what} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def alone(name: str, what: str, count: int) -> int:
    spec = pools()[name]
    assert spec is not None
    if what == "round_trips_one_cpu":
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the workers inherit it
        what = "round_trips"
    value = round_trips(spec, count) if what == "round_trips" else throughput(spec, count)
    print(json.dumps(value))
    return 0


def check(value: object, expected: object) -> None:
    if value != expected:
        raise RuntimeError(f"a pool returned {value!r:.80} instead of {expected!r:.80}")


# -- failures ----------------------------------------------------------------------------------


def sigkill_mid_task(spec: Pool) -> dict[str, Any]:
    """Six 0.3 s tasks around one that SIGKILLs its worker: how many of the six fail, and
    whether the pool runs a task afterwards."""
    pool = spec.make(None)
    try:
        naps = [spec.submit(pool, nap, (i,), None) for i in range(3)]
        killer = spec.submit(pool, kill_own_worker, (), None)
        naps += [spec.submit(pool, nap, (i,), None) for i in range(3, 6)]
        killer_error = outcome(killer)
        others_failed = sum(outcome(f) is not None for f in naps)
        try:
            after = spec.submit(pool, trivial, (), None).result(30) == 42
        except Exception:
            after = False
    finally:
        with contextlib.suppress(Exception):
            close(pool)
    return {"task_failed_with": killer_error, "others_failed": others_failed,
            "of": len(naps), "pool_works_after": after}


def outcome(future: Any) -> str | None:
    """None if the future has a value, else the name of its exception."""
    try:
        future.result(60)
    except Exception as error:
        return type(error).__name__
    return None


def never_returning_task(spec: Pool, scratch: Path) -> dict[str, Any]:
    """The never-returning task, with a 1 s timeout where the pool has one."""
    report = scratch / f"hang-{spec.name.split()[0]}"
    pool = spec.make(HANG_TIMEOUT if spec.has_timeout else None)
    pids: list[int] = []
    try:
        future = spec.submit(pool, never_return, (str(report),),
                             HANG_TIMEOUT if spec.has_timeout else None)
        pids = wait_for_report(report)
        started = time.monotonic()
        error = outcome_within(future, HANG_TIMEOUT + (SETTLE + 5 if spec.has_timeout else 0))
        waited = time.monotonic() - started
        gone_after = wait_gone(pids, max(0.0, HANG_TIMEOUT + SETTLE - waited))
        result = {"outcome": error, "worker_gone": gone_after[0],
                  "child_gone": gone_after[1], "setsid_child_gone": gone_after[2]}
    finally:
        for pid in pids:  # whatever is left: ours to end
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            close(pool)
    return result


def wait_for_report(report: Path) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            text = report.read_text()
            if text.endswith("\n"):
                return [int(x) for x in text.split()]
        time.sleep(0.01)  # a file appearing has no event to wait on
    raise RuntimeError(f"the never-returning task did not start: no {report}")


def outcome_within(future: Any, timeout: float) -> str:
    try:
        future.result(timeout)
    except Exception as error:
        return type(error).__name__
    return "returned"


def wait_gone(pids: list[int], timeout: float) -> list[bool]:
    """For each pid, whether it has exited within `timeout` (pidfds; zombies count)."""
    fds = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fds[pid] = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout
    try:
        while True:
            live = [fd for fd in fds.values() if not select.select([fd], [], [], 0)[0]]
            left = deadline - time.monotonic()
            if not live or left <= 0:
                break
            select.select(live, [], [], left)
        return [pid not in fds or bool(select.select([fds[pid]], [], [], 0)[0])
                for pid in pids]
    finally:
        for fd in fds.values():
            os.close(fd)


# -- the whole run -----------------------------------------------------------------------------


def measure(sizes: dict[str, int]) -> dict[str, Any]:
    """Speed: each pool alone in its own interpreter, in rounds that take the pools in
    turn (rotated each round), so that the machine's noise spreads over all of them."""
    all_pools = pools()
    available = {name: p for name, p in all_pools.items() if p is not None}
    names = list(available)
    data: dict[str, Any] = {"pools": {name: p is not None for name, p in all_pools.items()},
                            "sizes": sizes, "machine": machine()}
    trips: dict[str, list[float]] = {name: [] for name in names}
    rates: dict[str, list[float]] = {name: [] for name in names}
    pinned: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(sizes["rounds"]):
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            trips[name] += speed_alone(name, "round_trips", sizes["round_trips"])
            pinned[name] += speed_alone(name, "round_trips_one_cpu", sizes["round_trips"])
            rates[name].append(speed_alone(name, "throughput", sizes["throughput_calls"]))
    data["round_trip_ms"], data["calls_per_s"] = trips, rates
    data["round_trip_one_cpu_ms"] = pinned
    data["sigkill"] = {name: sigkill_mid_task(spec) for name, spec in available.items()}
    with tempfile.TemporaryDirectory() as scratch:
        data["hang"] = {name: never_returning_task(spec, Path(scratch))
                        for name, spec in available.items()}
    return data


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
            f"{os.cpu_count()} CPUs, load average {load}")


def yes(value: bool) -> str:
    return "yes" if value else "**no**"


def table(data: dict[str, Any]) -> list[str]:
    trips, rates = data["round_trip_ms"], data["calls_per_s"]
    pinned = data["round_trip_one_cpu_ms"]
    pebble = statistics.median(trips[PEBBLE]) if PEBBLE in trips else None
    pebble_pinned = statistics.median(pinned[PEBBLE]) if PEBBLE in pinned else None
    ppe = statistics.median(rates[PPE])
    lines = ["| pool | round trip, ms | × pebble | … on one CPU, ms (× pebble) | calls/s | "
             "× PPE | SIGKILL mid-task: others failed, pool works after | never-returning "
             "task: outcome, worker / child / setsid'd child gone |",
             "|---|---|---|---|---|---|---|---|"]
    for name, present in data["pools"].items():
        if not present:
            lines.append(f"| {name} | not installed | | | | | | |")
            continue
        trip, rate = statistics.median(trips[name]), statistics.median(rates[name])
        one_cpu = statistics.median(pinned[name])
        kill, hang = data["sigkill"][name], data["hang"][name]
        lines.append(
            f"| {name} | {trip:.3f} ({min(trips[name]):.3f}–{max(trips[name]):.3f}) | "
            f"{_times(trip, pebble)} | {one_cpu:.3f} ({_times(one_cpu, pebble_pinned)}) | "
            f"{rate:,.0f} | {rate / ppe:.2f}× | {kill['others_failed']} of {kill['of']}, "
            f"{yes(kill['pool_works_after'])} | {hang['outcome']}: "
            f"{yes(hang['worker_gone'])} / {yes(hang['child_gone'])} / "
            f"{yes(hang['setsid_child_gone'])} |")
    return lines


def _times(value: float, base: float | None) -> str:
    return f"{value / base:.2f}×" if base else "n/a"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few calls (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    parser.add_argument("--alone", nargs=3, metavar=("POOL", "WHAT", "COUNT"),
                        help=argparse.SUPPRESS)  # one measurement, for `speed_alone`
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    # pebble and loky start threads; Python 3.12+ warns about every fork made after.
    warnings.filterwarnings("ignore", "This process", DeprecationWarning)
    if args.alone:
        return alone(args.alone[0], args.alone[1], int(args.alone[2]))
    try:
        data = measure(QUICK if args.quick else FULL)
    except Exception as error:
        print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data))
        return 0
    print("\n".join(table(data)))
    print(f"\n{data['machine']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
