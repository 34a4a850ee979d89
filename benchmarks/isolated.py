#!/usr/bin/env python3
"""Round trip of one isolated call: `python benchmarks/isolated.py [--quick] [--calls N] [--json]`.

Times `pwsup.embedded.run_isolated(f)` for a trivial `f` against pebble's
`concurrent.process` (fork context) and a bare `multiprocessing` fork Process + Pipe, the
least a fork-based design can cost. Needs only the standard library and pwsup; pebble is
used if it is importable, and its row says "pebble not installed" otherwise (this script
installs nothing; `benchmarks/run.py`, which runs it as its `isolated` benchmark with the
benchmark venv's python, installs pebble there). Calls are interleaved, one of each method
per round, so a busy machine slows every method alike. Prints a markdown table of medians
(min to max), or with --json every time measured (`{"calls": N, "methods": {name: [ms, ...]
or null}, "machine": ...}`); the goal is a median at most 1.2 times pebble's. Exits
non-zero only if a method fails, never because of the numbers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from pwsup.embedded import run_isolated

FULL_CALLS = 200
QUICK_CALLS = 25
WARMUP_CALLS = 3
GOAL = 1.2
"""run_isolated's median may be at most this multiple of pebble's."""

Method = Callable[[], object]


def trivial() -> int:
    return 42


def via_run_isolated() -> object:
    return run_isolated(trivial)


def via_run_isolated_with_timeout() -> object:
    return run_isolated(trivial, timeout=60)


def via_multiprocessing() -> object:
    """A fork Process sending its result through a one-way Pipe: the baseline."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=lambda: writer.send(trivial()))
    process.start()
    writer.close()
    try:
        return reader.recv()
    finally:
        process.join()
        reader.close()


def pebble_method() -> Method | None:
    """pebble's one-off process call, or None when pebble is not installed."""
    try:
        concurrent = importlib.import_module("pebble.concurrent")  # optional, and untyped
    except ImportError:
        return None
    context = multiprocessing.get_context("fork")
    try:
        decorated = concurrent.process(mp_context=context)(trivial)
    except TypeError:  # pebble before 5 named it `context`
        decorated = concurrent.process(context=context)(trivial)
    return lambda: decorated().result()


def methods() -> dict[str, Method | None]:
    return {
        "pwsup run_isolated(f)": via_run_isolated,
        "pwsup run_isolated(f, timeout=60)": via_run_isolated_with_timeout,
        "pebble concurrent.process (fork)": pebble_method(),
        "multiprocessing fork Process + Pipe": via_multiprocessing,
    }


def measure(available: dict[str, Method], calls: int) -> dict[str, list[float]]:
    """Milliseconds per call, one call of each method per round."""
    for method in available.values():
        for _ in range(WARMUP_CALLS):
            check(method())
    times: dict[str, list[float]] = {name: [] for name in available}
    for _ in range(calls):
        for name, method in available.items():
            start = time.perf_counter()
            result = method()
            times[name].append((time.perf_counter() - start) * 1000)
            check(result)
    return times


def check(result: object) -> None:
    if result != 42:
        raise RuntimeError(f"a method returned {result!r} instead of 42")


def table(all_methods: dict[str, Method | None], times: dict[str, list[float]]) -> list[str]:
    pebble = times.get("pebble concurrent.process (fork)")
    pebble_median = statistics.median(pebble) if pebble else None
    lines = ["| method | median ms (min–max) | vs pebble |", "|---|---|---|"]
    for name in all_methods:
        if name not in times:
            lines.append(f"| {name} | pebble not installed | |")
            continue
        median = statistics.median(times[name])
        spread = f"{median:.2f} ({min(times[name]):.2f}–{max(times[name]):.2f})"
        ratio = f"{median / pebble_median:.2f}×" if pebble_median else "n/a"
        lines.append(f"| {name} | {spread} | {ratio} |")
    lines.append("")
    lines.append(goal_line(times, pebble_median))
    return lines


def goal_line(times: dict[str, list[float]], pebble_median: float | None) -> str:
    if pebble_median is None:
        return f"Goal: run_isolated ≤ {GOAL}× pebble (median): n/a, pebble not installed."
    ratio = statistics.median(times["pwsup run_isolated(f)"]) / pebble_median
    verdict = "met" if ratio <= GOAL else "NOT met"
    return f"Goal: run_isolated ≤ {GOAL}× pebble (median): {verdict} ({ratio:.2f}×)."


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
            f"{os.cpu_count()} CPUs, load average {load}")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_CALLS} calls per method instead of {FULL_CALLS}")
    parser.add_argument("--calls", type=int, help="calls per method (overrides --quick)")
    parser.add_argument("--json", action="store_true",
                        help="print every time measured as JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    calls = args.calls or (QUICK_CALLS if args.quick else FULL_CALLS)
    # pebble waits in a thread; Python 3.12+ warns about every fork made while it exists.
    warnings.filterwarnings("ignore", "This process", DeprecationWarning)
    all_methods = methods()
    available = {name: m for name, m in all_methods.items() if m is not None}
    try:
        times = measure(available, calls)
    except Exception as error:
        print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"calls": calls, "machine": machine(),
                          "methods": {name: times.get(name) for name in all_methods}}))
        return 0
    print(f"## run_isolated round trip, trivial f, {calls} calls per method\n")
    print("\n".join(table(all_methods, times)))
    print(f"\n{machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
