"""2. Exit latency and 3. SIGTERM delivery: how fast the wrapper passes events through."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from pwbench.context import Context, interleaved
from pwbench.procs import BenchError, describe_status
from pwbench.report import Section, at_most, codes, median, spread, target
from pwbench.wrappers import Wrapper

EXIT_OVER_TINI_MS = 0.5
"""pwsup's exit latency target: at most tini's median (same run) plus this."""
TERM_TARGET_MS = 0.3
TERM_MAX_TARGET_MS = 1.0
"""SIGTERM → handler targets: the median, and the slowest of the runs."""
SETTLE = 0.1
"""Seconds between the child's READY and SIGTERM, so the wrapper is idle in its wait."""
ROWS = ("bare", "floor", "pwsup", "proc_wrapper", "dumb-init", "tini")
"""`floor` is `floor_supervisor.py`: the least a supervisor in Python does on these paths."""


@dataclass
class Samples:
    first_ms: list[float] = field(default_factory=list)
    second_ms: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


def _exit_once(ctx: Context, wrapper: Wrapper) -> tuple[float, str]:
    with ctx.reports() as reports, ctx.start(wrapper, "exit", reports) as proc:
        exited = proc.wait_exit(15.0)
        if exited is None:
            raise BenchError(f"{wrapper.label}: did not exit within 15 s of starting")
        fields = reports.expect("EXIT", 1.0)
        if fields is None:
            raise BenchError(f"{wrapper.label}: the child never reported EXIT")
        return (exited - int(fields[0])) / 1e6, describe_status(proc.reap())


def _term_once(ctx: Context, wrapper: Wrapper) -> tuple[float | None, float | None, str]:
    """(TERM sent → child's handler ms, TERM sent → wrapper exit ms, wrapper status)."""
    with ctx.reports() as reports, ctx.start(wrapper, "term", reports) as proc:
        reports.ready()
        time.sleep(SETTLE)
        sent = time.monotonic_ns()
        proc.signal(signal.SIGTERM)
        exited = proc.wait_exit(10.0)
        fields = reports.expect("TERM", 0.5)
        handled = None if fields is None else (int(fields[0]) - sent) / 1e6
        if exited is None:
            return handled, None, "still running 10 s after SIGTERM"
        return handled, (exited - sent) / 1e6, describe_status(proc.reap())


def _collect(ctx: Context, wrappers: list[Wrapper], rounds: int, mode: str
             ) -> dict[str, Samples]:
    samples = {wrapper.key: Samples() for wrapper in wrappers}
    for index, wrapper in interleaved(wrappers, ctx.reps.warmup + rounds):
        sample = samples[wrapper.key]
        if mode == "exit":
            latency, outcome = _exit_once(ctx, wrapper)
            handled, exited = latency, None
        else:
            handled, exited, outcome = _term_once(ctx, wrapper)
        if index < ctx.reps.warmup:
            continue
        for values, value in ((sample.first_ms, handled), (sample.second_ms, exited)):
            if value is not None:
                values.append(value)
        sample.outcomes.append(outcome)
    return samples


def _excess(value: float | None, floor: float | None, digits: int) -> str:
    """What the wrapper adds to the bare floor (medians)."""
    if value is None or floor is None:
        return "—"
    return f"{value - floor:+.{digits}f}"


def _not_installed(ctx: Context, width: int) -> list[list[str]]:
    missing = [w for key, w in ctx.wrappers.items() if key in ROWS and not w.installed]
    return [[w.label, "0", "not installed", *([""] * (width - 3))] for w in missing]


def _exit_goal(value: float | None, tini: float | None) -> str:
    label = f"≤ tini + {EXIT_OVER_TINI_MS:g} ms"
    if tini is None:
        return target(label, None, "")
    return target(label + f" ({tini + EXIT_OVER_TINI_MS:.2f} ms)",
                  None if value is None else value <= tini + EXIT_OVER_TINI_MS,
                  f"{value or 0:.2f} ms")


def _term_goal(value: float | None, values: list[float]) -> str:
    slowest = max(values) if values else None
    return (at_most(TERM_TARGET_MS, value, "ms", 3) + "; max "
            + at_most(TERM_MAX_TARGET_MS, slowest, "ms", 3))


def exit_latency(ctx: Context) -> Section:
    wrappers = ctx.installed(*ROWS)
    samples = _collect(ctx, wrappers, ctx.reps.exit, "exit")
    floor = median(samples["bare"].first_ms)
    tini = median(samples["tini"].first_ms) if "tini" in samples else None
    rows = []
    for wrapper in wrappers:
        sample = samples[wrapper.key]
        value = median(sample.first_ms)
        goal = _exit_goal(value, tini) if wrapper.key == "pwsup" else ""
        rows.append([wrapper.label, str(len(sample.first_ms)), spread(sample.first_ms),
                     _excess(value, floor, 2), codes(sample.outcomes), goal])
    section = Section(
        "2. Exit latency",
        "The child records CLOCK_MONOTONIC just before `os._exit(0)` (0.1 s after it "
        "starts, so the wrapper is idle); the driver, blocked in `poll` on the wrapper's "
        "pidfd, reads the clock as soon as the wrapper has exited. The bare row is the "
        f"floor (kernel exit + driver wake-up). {ctx.reps.warmup} warm-up run(s) per row.",
        ["wrapper", "N", "child exit → wrapper exit, ms", "median − bare, ms",
         "wrapper exit status", "target (pwsup)"], rows)
    section.rows += _not_installed(ctx, len(section.headers))
    return section


def term_delivery(ctx: Context) -> Section:
    wrappers = ctx.installed(*ROWS)
    samples = _collect(ctx, wrappers, ctx.reps.term, "term")
    floor = median(samples["bare"].first_ms)
    rows = []
    for wrapper in wrappers:
        sample = samples[wrapper.key]
        value = median(sample.first_ms)
        goal = _term_goal(value, sample.first_ms) if wrapper.key == "pwsup" else ""
        missed = len(sample.outcomes) - len(sample.first_ms)
        rows.append([wrapper.label, str(len(sample.outcomes)), spread(sample.first_ms, 3)
                     + (f"; never delivered ×{missed}" if missed else ""),
                     _excess(value, floor, 3), spread(sample.second_ms),
                     codes(sample.outcomes), goal])
    section = Section(
        "3. SIGTERM → child",
        "The child installs a SIGTERM handler, reports READY and waits in `signal.pause()`; "
        f"{SETTLE:g} s later the driver reads CLOCK_MONOTONIC and sends SIGTERM to the "
        "wrapper (to the child itself in the bare row). The handler's first act is to read "
        "the clock; then it dies of SIGTERM (so 143 is the expected exit code). The bare row "
        "is the floor (kernel delivery + Python running the handler).",
        ["wrapper", "N", "TERM sent → child handler, ms", "median − bare, ms",
         "TERM sent → wrapper exit, ms", "wrapper exit status", "target (pwsup)"], rows)
    section.rows += _not_installed(ctx, len(section.headers))
    section.notes.append("proc_wrapper does not forward the signal: its SIGTERM handler "
                         "calls sys.exit(0), and its exit handler then sends SIGTERM to the "
                         "child's process group — hence its delay and exit code 0.")
    return section
