#!/usr/bin/env python3
"""pwsup benchmarks: `python3 benchmarks/run.py [--quick] [--only NAME ...]` (stdlib only).

Creates/reuses benchmarks/.venv (pwsup from this checkout, cloudreactor-procwrapper 6.0.2,
dumb-init, boto3, moto[server], pebble, supervisor, loky), then prints markdown tables comparing
the bare command, pwsup (also as the one-file executable), proc_wrapper, dumb-init and tini
(if on PATH): process handling, a hung API server, status updates, secrets from AWS Secrets
Manager (moto on 127.0.0.1), isolated calls, IsolatedPool against ProcessPoolExecutor,
pebble and loky, and the memory each supervised service takes under supervisord. Exits
non-zero if any benchmark crashes, never because of the numbers.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from pwbench import (
    hung_api,
    isolated_bench,
    latency,
    pool_bench,
    secrets_bench,
    service_memory,
    startup,
    status_bench,
    stopping,
    venv,
    zombies,
)
from pwbench.context import FULL, QUICK, Context
from pwbench.machine import note
from pwbench.report import Section
from pwbench.wrappers import discover

Benchmark = Callable[[Context], Section]
BENCHMARKS: dict[str, Benchmark] = {
    "startup": startup.run,
    "exit": latency.exit_latency,
    "term": latency.term_delivery,
    "escalation": stopping.escalation,
    "timeout": stopping.timeout_accuracy,
    "zombies": zombies.run,
    "hung_api": hung_api.run,
    "status": status_bench.run,
    "secrets": secrets_bench.run,
    "isolated": isolated_bench.run,
    "memory": service_memory.run,
    "pool": pool_bench.run,
}


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="minimal repetitions (CI smoke run: fails only on crashes)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these: {', '.join(BENCHMARKS)}")
    return parser.parse_args(argv)


def _log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def _run_one(name: str, bench: Benchmark, ctx: Context) -> bool:
    """Print one benchmark's section; False if it crashed."""
    _log(f"running {name} ...")
    started = time.monotonic()
    gc.collect()
    gc.disable()
    try:
        section = bench(ctx)
    except Exception:
        print(f"## {name}: CRASHED\n\n```\n{traceback.format_exc()}```\n", flush=True)
        _log(f"{name} CRASHED (traceback in the output)")
        return False
    finally:
        gc.enable()
    section.seconds = time.monotonic() - started
    print(section.render(), flush=True)
    return True


def _context(quick: bool, work: str) -> tuple[Context, list[str]]:
    _log("setting up benchmarks/.venv (pwsup is reinstalled every run) ...")
    env_venv, setup_notes = venv.ensure()
    ctx = Context(env_venv, discover(env_venv), QUICK if quick else FULL, Path(work),
                  venv.clean_env(), quick)
    return ctx, setup_notes


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)  # unwind: every `with Proc` kills what it started
    if not sys.platform.startswith("linux"):
        print("these benchmarks need Linux (pidfds, /proc, PID namespaces)", file=sys.stderr)
        return 2
    started = time.monotonic()
    venv.WORK.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=venv.WORK)
    try:
        ctx, setup_notes = _context(args.quick, work)
        setup_s = time.monotonic() - started
        mode = "quick (smoke run: too few repetitions to trust)" if args.quick else "full"
        print(f"# pwsup benchmarks\n\n{note(ctx.wrappers, venv.versions(ctx.venv), mode)}")
        print(f"- set-up: {setup_s:.1f} s" + "".join(f"; {n}" for n in setup_notes) + "\n",
              flush=True)
        names = args.only or list(BENCHMARKS)
        ok = [_run_one(name, BENCHMARKS[name], ctx) for name in names]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - started
    failed = [name for name, good in zip(names, ok, strict=True) if not good]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"_Total: {total:.1f} s; {len(ok) - len(failed)} of {len(ok)} benchmarks ran"
          + (f"; CRASHED: {', '.join(failed)}" if failed else "")
          + f"; load average at the end {load}_")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every process started was killed on the way out
        sys.exit(130)
