"""4. SIGKILL escalation after the grace period, and 5. time-limit accuracy."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pwbench.context import Context, interleaved
from pwbench.procs import BenchError, Reports, describe_status, wait_events
from pwbench.report import Section, codes, median, spread, target
from pwbench.wrappers import Options, Wrapper

GRACE_S = 1
TIMEOUT_S = 1
ESCALATION_TOLERANCE_MS = 5.0
SETTLE = 0.1
NO_TIMEOUT_CAP = 5.0
"""Seconds a time-limited run may take before it is reported as not stopping."""


@dataclass
class Samples:
    first_ms: list[float] = field(default_factory=list)
    second_ms: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _escalate_once(ctx: Context, wrapper: Wrapper, sample: Samples) -> None:
    """SIGTERM a wrapper whose child ignores it; time the child's death and the exit."""
    cap = ctx.reps.no_escalation_cap if not wrapper.escalates else GRACE_S + 5.0
    with ctx.reports() as reports, ctx.start(wrapper, "ignore", reports,
                                             Options(grace=GRACE_S)) as proc:
        child_fd = proc.watch(reports.ready()[1])
        if child_fd is None:
            raise BenchError(f"{wrapper.label}: the child died before SIGTERM")
        time.sleep(SETTLE)
        sent = time.monotonic_ns()
        proc.signal(signal.SIGTERM)
        seen = wait_events({"child": child_fd, "wrapper": proc.pidfd}, cap)
        if "child" not in seen:
            sample.outcomes.append(f"no escalation (child alive {cap:g} s after SIGTERM)")
            return  # Proc.close() SIGKILLs both
        sample.first_ms.append((seen["child"] - sent) / 1e6 - GRACE_S * 1000)
        if "wrapper" in seen:
            sample.second_ms.append((seen["wrapper"] - sent) / 1e6 - GRACE_S * 1000)
        sample.outcomes.append(describe_status(proc.reap()) if "wrapper" in seen
                               else "wrapper still running")


def _ready_arrival(reports: Reports) -> tuple[int, int]:
    """(when READY reached the driver, the command's pid) for the shell child."""
    found = reports.arrival("READY", 15.0)
    if found is None:
        raise BenchError("the command never reported READY within 15 s")
    return found[0], int(found[1][0])


def _timeout_once(ctx: Context, wrapper: Wrapper, sample: Samples) -> None:
    """A 1 s limit around a 30 s sleep: when did the wrapper exit, and how?

    In the bare row nothing limits the command: it calibrates spawn → READY instead.
    """
    with ctx.reports() as reports, ctx.start(wrapper, "sleep-sh", reports,
                                             Options(timeout=TIMEOUT_S)) as proc:
        ready_ns, pid = _ready_arrival(reports)
        if wrapper.key == "bare":
            sample.first_ms.append((ready_ns - proc.started_ns) / 1e6)
            return  # Proc.close() SIGKILLs the sleep
        child_fd = proc.watch(pid)
        fds = {"wrapper": proc.pidfd} | ({} if child_fd is None else {"child": child_fd})
        seen = wait_events(fds, NO_TIMEOUT_CAP)
        if "wrapper" not in seen:
            sample.outcomes.append(f"still running after {NO_TIMEOUT_CAP:g} s")
            return
        sample.first_ms.append((seen["wrapper"] - ready_ns) / 1e6 - TIMEOUT_S * 1000)
        sample.second_ms.append((seen["wrapper"] - proc.started_ns) / 1e6 - TIMEOUT_S * 1000)
        sample.outcomes.append(describe_status(proc.reap()))
        if "child" not in seen:
            sample.notes.append("yes: alive after the wrapper exited")


Once = Callable[[Context, Wrapper, Samples], None]


def _collect(ctx: Context, wrappers: list[Wrapper], rounds: int, once: Once
             ) -> dict[str, Samples]:
    """No warm-up runs here: each run takes over a second, and start-up is not timed."""
    samples = {wrapper.key: Samples() for wrapper in wrappers}
    for _, wrapper in interleaved(wrappers, rounds):
        once(ctx, wrapper, samples[wrapper.key])
    return samples


def _escalation_rows(ctx: Context, samples: dict[str, Samples]) -> list[list[str]]:
    rows = []
    for key in ("pwsup", "proc_wrapper", "dumb-init", "tini"):
        wrapper = ctx.wrappers[key]
        if key not in samples:
            rows.append([wrapper.label, "0", "not installed", "", "", ""])
            continue
        sample = samples[key]
        goal = ""
        value = median(sample.first_ms)
        if key == "pwsup":
            goal = target(f"within ±{ESCALATION_TOLERANCE_MS:g} ms", None if value is None
                          else abs(value) <= ESCALATION_TOLERANCE_MS, f"{value or 0:+.2f} ms")
        rows.append([wrapper.label, str(len(sample.outcomes)), spread(sample.first_ms),
                     spread(sample.second_ms), codes(sample.outcomes), goal])
    return rows


def escalation(ctx: Context) -> Section:
    escalating = ctx.installed("pwsup", "proc_wrapper")
    others = ctx.installed("dumb-init", "tini")
    samples = _collect(ctx, escalating, ctx.reps.escalation, _escalate_once)
    samples |= _collect(ctx, others, 1, _escalate_once)
    return Section(
        "4. Escalation accuracy (grace period 1 s)",
        "The child ignores SIGTERM and reports READY; 0.1 s later the driver sends SIGTERM "
        "to the wrapper and times, with pidfds, the child's death (SIGKILL) and the "
        "wrapper's exit. Shown: time since SIGTERM minus the 1000 ms grace period. "
        "Grace period: pwsup `--process-termination-grace-period 1`, proc_wrapper "
        "`PROC_WRAPPER_PROCESS_TERMINATION_GRACE_PERIOD_SECONDS=1`. dumb-init and tini have "
        f"no escalation: one run each, given up after {ctx.reps.no_escalation_cap:g} s "
        "(the driver then SIGKILLs them).",
        ["wrapper", "N", "TERM → child killed − 1000 ms", "TERM → wrapper exit − 1000 ms",
         "wrapper exit status", "target (pwsup)"],
        _escalation_rows(ctx, samples))


def _timeout_rows(ctx: Context, samples: dict[str, Samples]) -> list[list[str]]:
    rows = []
    for key in ("pwsup", "proc_wrapper", "timeout", "dumb-init", "tini"):
        wrapper = ctx.wrappers[key]
        label = f"{wrapper.label} 1" if key == "timeout" else wrapper.label
        if not wrapper.installed:
            rows.append([label, "0", "not installed", "", "", ""])
            continue
        if key not in samples:
            rows.append([label, "—", "n/a (no time-limit feature)", "n/a", "n/a", ""])
            continue
        sample = samples[key]
        left = "; ".join(sorted(set(sample.notes))) or "no"
        rows.append([label, str(len(sample.outcomes)), spread(sample.first_ms),
                     spread(sample.second_ms, 1), codes(sample.outcomes), left])
    return rows


def timeout_accuracy(ctx: Context) -> Section:
    limited = ctx.installed("bare", "pwsup", "proc_wrapper", "timeout")
    samples = _collect(ctx, limited, ctx.reps.timeout, _timeout_once)
    calibration = samples.pop("bare").first_ms
    return Section(
        "5. Time-limit accuracy (limit 1 s, command sleeps 30 s)",
        "Time limit: pwsup `--process-timeout 1`, proc_wrapper "
        "`PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS=1`; coreutils `timeout 1` is the reference. "
        "The command is `sh sleep_child.sh FIFO` (writes READY, then `exec sleep 30`; dies "
        "of the SIGTERM). Shown: the wrapper's exit (pidfd) − 1000 ms, counted from when "
        "READY reached the driver (blocked in `poll` on the FIFO), and from the driver's "
        "`posix_spawn` of the wrapper (includes the wrapper's start-up).",
        ["wrapper", "N", "exit − READY − 1000 ms", "exit − wrapper spawn − 1000 ms",
         "wrapper exit status", "command left running?"],
        _timeout_rows(ctx, samples),
        [f"READY arrives {spread(calibration)} ms after the command is spawned directly by "
         "the driver (bare calibration, same N): a wrapper's timer that starts at its own "
         "spawn of the command runs about that much (plus the spawn itself) before READY, "
         "so a perfectly accurate wrapper shows about minus that in the READY column."])


