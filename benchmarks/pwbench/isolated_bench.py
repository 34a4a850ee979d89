"""10. `run_isolated` round trip vs pebble vs multiprocessing: benchmarks/isolated.py, run
with the benchmark venv's python (which has pwsup and pebble) and `--json`."""

from __future__ import annotations

import json
import subprocess

from pwbench.context import Context
from pwbench.procs import BenchError
from pwbench.report import Section, median, spread, target
from pwbench.venv import BENCH_DIR

SCRIPT = BENCH_DIR / "isolated.py"
PEBBLE = "pebble concurrent.process (fork)"
MAIN = "pwsup run_isolated(f)"
GOAL = 1.2


def run(ctx: Context) -> Section:
    calls = ctx.reps.isolated_calls
    result = subprocess.run([str(ctx.venv.python), str(SCRIPT), "--calls", str(calls),
                             "--json"], env=ctx.env, capture_output=True, text=True,
                            timeout=600, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BenchError(f"isolated.py failed (exit {result.returncode}): "
                         f"{result.stderr.strip()}")
    data = json.loads(result.stdout)
    methods: dict[str, list[float] | None] = data["methods"]
    pebble = methods.get(PEBBLE)
    base = median(pebble) if pebble else None
    rows = []
    for name, times in methods.items():
        if not times:
            rows.append([name, "0", "pebble not installed", "", ""])
            continue
        value = median(times)
        goal = ""
        if name == MAIN:
            ratio = None if base is None or value is None else value / base
            goal = target(f"≤ {GOAL:g}× pebble", None if ratio is None else ratio <= GOAL,
                          f"{ratio or 0:.2f}×")
        rows.append([name, str(len(times)), spread(times),
                     "n/a" if not base or value is None else f"{value / base:.2f}×", goal])
    return Section(
        "10. Isolated call round trip",
        "`benchmarks/isolated.py` (also runnable on its own) with the benchmark venv's "
        "python: the round trip of one call of a trivial function (returns 42) through "
        f"`pwsup.embedded.run_isolated`, pebble's `concurrent.process` (fork context) and "
        f"a bare `multiprocessing` fork Process + Pipe; {calls} calls per method after 3 "
        "warm-up calls each, one call of each method per round.",
        ["method", "N", "ms, median (min–max)", "× pebble", "target (pwsup)"], rows)
