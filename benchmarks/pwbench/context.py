"""What every benchmark gets: the venv, the wrappers, repetitions, a scratch dir, the env."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pwbench.procs import Proc, Reports
from pwbench.venv import Venv
from pwbench.wrappers import Options, Wrapper

CHILD = Path(__file__).resolve().parent / "child.py"
SLEEP_CHILD = Path(__file__).resolve().parent / "sleep_child.sh"
T = TypeVar("T")


@dataclass(frozen=True)
class Reps:
    """Measured repetitions per row (warm-up runs come on top)."""

    startup: int
    rss: int
    exit: int
    term: int
    escalation: int
    timeout: int
    zombies: int
    warmup: int
    no_escalation_cap: float
    """Seconds after SIGTERM with no SIGKILL before a wrapper is called non-escalating."""
    hung: int
    """Runs per (case, wrapper) of hung_api; a run past the cap is not repeated."""
    hung_cap: float
    """Seconds a hung_api run may take before it is reported as "> cap"."""
    status_updates: int
    """Status updates the child sends in the status benchmark."""
    status: int
    """Wrapped runs per wrapper in the status benchmark."""
    send_calls: int
    """`send_update` calls timed per process (cost of one call)."""
    send_rounds: int
    """Processes per implementation for the cost of one `send_update` call."""
    secrets: int
    """Wall-time runs per wrapper in the secrets benchmark (+ 1 checking run)."""
    isolated_calls: int
    """Calls per method in the isolated benchmark."""
    services: int
    """Concurrent services per supervisord in the memory benchmark."""


FULL = Reps(startup=40, rss=10, exit=30, term=30, escalation=8, timeout=8, zombies=2,
            warmup=2, no_escalation_cap=3.0, hung=3, hung_cap=20.0, status_updates=50_000,
            status=3, send_calls=100_000, send_rounds=5, secrets=10, isolated_calls=200,
            services=50)
QUICK = Reps(startup=3, rss=1, exit=3, term=3, escalation=1, timeout=1, zombies=1,
             warmup=1, no_escalation_cap=2.0, hung=1, hung_cap=7.0, status_updates=5_000,
             status=1, send_calls=20_000, send_rounds=1, secrets=1, isolated_calls=25,
             services=5)


@dataclass
class Context:
    venv: Venv
    wrappers: dict[str, Wrapper]
    reps: Reps
    work: Path
    env: dict[str, str]
    quick: bool
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def child(self, mode: str, fifo: Path) -> list[str]:
        return [str(self.venv.python), str(CHILD), mode, str(fifo)]

    def reports(self) -> Reports:
        return Reports(self.work / f"report-{next(self._serial)}.fifo")

    def sleep_child(self, fifo: Path) -> list[str]:
        return [shutil.which("sh") or "/bin/sh", str(SLEEP_CHILD), str(fifo)]

    def start(self, wrapper: Wrapper, mode: str, reports: Reports,
              opts: Options | None = None, prefix: Sequence[str] = ()) -> Proc:
        """Start the instrumented child in `mode` under `wrapper` (after `prefix`)."""
        cmd = (self.sleep_child(reports.path) if mode == "sleep-sh"
               else self.child(mode, reports.path))
        argv, extra = wrapper.command(cmd, opts)
        return Proc([*prefix, *argv], {**self.env, **extra})

    def installed(self, *keys: str) -> list[Wrapper]:
        return [self.wrappers[key] for key in keys if self.wrappers[key].installed]


def interleaved(rows: Sequence[T], rounds: int) -> Iterator[tuple[int, T]]:
    """(round, row) for `rounds` rounds, each round rotated one further to spread noise."""
    for index in range(rounds):
        shift = index % len(rows) if rows else 0
        for row in [*rows[shift:], *rows[:shift]]:
            yield index, row
