"""12. `IsolatedPool` vs ProcessPoolExecutor, pebble and loky: benchmarks/pool.py, run with
the benchmark venv's python (which has pwsup, pebble and loky); its table as it prints it."""

from __future__ import annotations

import subprocess

from pwbench.context import Context
from pwbench.procs import BenchError
from pwbench.report import Section
from pwbench.venv import BENCH_DIR

SCRIPT = BENCH_DIR / "pool.py"


def run(ctx: Context) -> Section:
    argv = [str(ctx.venv.python), str(SCRIPT), *(["--quick"] if ctx.quick else [])]
    result = subprocess.run(argv, env=ctx.env, capture_output=True, text=True, timeout=1800,
                            check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BenchError(f"pool.py failed (exit {result.returncode}): {result.stderr.strip()}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return Section(
        "12. Process pools: IsolatedPool, ProcessPoolExecutor, pebble, loky",
        "`benchmarks/pool.py` (also runnable on its own; see its docstring) with the "
        "benchmark venv's python: 2 warm workers each; round trip of a trivial call and "
        "throughput of 10,000 small calls, each pool alone in its own interpreter, in "
        "rotated rounds; the round trip again with the caller and its workers pinned to "
        "one CPU (what is left without cross-CPU wake-ups); then a worker SIGKILLed "
        "mid-task and a task that never returns (1 s timeout where the pool has one). "
        "Targets (pwsup): ≤ 0.5× pebble's round trip, ≥ 1× ProcessPoolExecutor's "
        "throughput.", headers, rows)
