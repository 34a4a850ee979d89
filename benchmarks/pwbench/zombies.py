"""6. Orphan reaping as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`)."""

from __future__ import annotations

import shutil
import subprocess

from pwbench.child import ORPHANS
from pwbench.context import Context, interleaved
from pwbench.procs import BenchError, describe_status
from pwbench.report import Section, codes
from pwbench.wrappers import Wrapper

ROWS = ("bare", "tini", "dumb-init", "proc_wrapper", "pwsup")


def _unshare_argv() -> list[str] | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    return [unshare, "--pid", "--fork", "--mount-proc", "--kill-child"]


def _why_not(prefix: list[str] | None) -> str | None:
    """None if a PID namespace can be made here, else the reason."""
    if prefix is None:
        return "`unshare` (util-linux) is not installed"
    true = shutil.which("true") or "/bin/true"
    try:
        result = subprocess.run([*prefix, true], capture_output=True, text=True, timeout=20,
                                check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`unshare` failed: {error}"
    if result.returncode != 0:
        return f"`unshare` is not permitted here: {result.stderr.strip() or result.returncode}"
    return None


def _once(ctx: Context, wrapper: Wrapper, prefix: list[str]) -> tuple[int | None, str]:
    with ctx.reports() as reports, ctx.start(wrapper, "zombies", reports,
                                             prefix=prefix) as proc:
        fields = reports.expect("ZOMBIES", 20.0)
        if fields is None and wrapper.key == "bare":
            raise BenchError("the bare child never reported its zombie count")
        if proc.wait_exit(10.0) is None:
            return (None if fields is None else int(fields[0])), "did not exit within 10 s"
        return (None if fields is None else int(fields[0])), describe_status(proc.reap())


def run(ctx: Context) -> Section:
    section = Section(
        "6. Zombies as PID 1",
        f"`unshare --pid --fork --mount-proc --kill-child X python child.py`: the child "
        f"double-forks {ORPHANS} grandchildren that exit after 0.2 s (orphans, re-parented to "
        "PID 1, i.e. to X), then after 1 s counts processes in state Z in /proc and exits. "
        "The no-wrapper row is the negative control (the child itself is PID 1 and never "
        "reaps them).",
        ["PID 1", "N", f"zombies after 1 s (of {ORPHANS})", "unshare exit status"])
    prefix = _unshare_argv()
    reason = _why_not(prefix)
    if reason is not None or prefix is None:
        section.notes.append(f"skipped: {reason}")
        return section
    wrappers = ctx.installed(*ROWS)
    counts: dict[str, list[str]] = {w.key: [] for w in wrappers}
    outcomes: dict[str, list[str]] = {w.key: [] for w in wrappers}
    for _, wrapper in interleaved(wrappers, ctx.reps.zombies):
        count, outcome = _once(ctx, wrapper, prefix)
        counts[wrapper.key].append("no report" if count is None else str(count))
        outcomes[wrapper.key].append(outcome)
    for key in ROWS:
        wrapper = ctx.wrappers[key]
        label = "none (child is PID 1)" if key == "bare" else wrapper.label
        if not wrapper.installed:
            section.rows.append([label, "0", "not installed", ""])
            continue
        section.rows.append([label, str(len(counts[key])), codes(counts[key]),
                             codes(outcomes[key])])
    return section
