"""1. Start-up: wall time and peak RSS of `X true`, against `python -c pass`; pwsup both
installed and as the one-file executable."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from pwbench import onefile
from pwbench.context import Context, interleaved
from pwbench.procs import BenchError, describe_status, timed_run
from pwbench.report import Section, median, ratio, spread, target

WALL_TARGET = 2.0
RSS_TARGET = 1.25
TIME = "/usr/bin/time"


_FORK_HELPER = """
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, status)
"""
"""Fallback without GNU time: fork from a small Python process and print wait4's ru_maxrss."""


@dataclass
class Row:
    label: str
    argv: list[str] | None  # None: not installed
    env: dict[str, str]
    key: str = ""
    missing: str = "not installed"
    wall_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)


def _onefile_row(ctx: Context, built: onefile.OneFile, true: str) -> Row:
    label = "`pwsup.pyz -- true` (one file)"
    if built.path is None:
        return Row(label, None, {}, "onefile", built.problem)
    return Row(label, [str(built.path), "--", true], {**ctx.env, **built.env}, "onefile")


def _rows(ctx: Context, built: onefile.OneFile) -> list[Row]:
    true = shutil.which("true") or "/bin/true"
    rows = [Row("`true` (bare)", [true], ctx.env, "bare"),
            Row("`python -c pass` (venv python)", [str(ctx.venv.python), "-c", "pass"],
                ctx.env, "python")]
    for key in ("pwsup", "onefile", "proc_wrapper", "dumb-init", "tini"):
        if key == "onefile":
            rows.append(_onefile_row(ctx, built, true))
            continue
        wrapper = ctx.wrappers[key]
        if not wrapper.installed:
            rows.append(Row(f"`{wrapper.label} true`", None, {}, key))
            continue
        argv, extra = wrapper.command([true])
        rows.append(Row(f"`{wrapper.label} true`", argv, {**ctx.env, **extra}, key))
    return rows


def _measure_wall(row: Row, keep: bool) -> None:
    assert row.argv is not None
    wall_ns, _, status = timed_run(row.argv, row.env)
    if status != 0:
        raise BenchError(f"{row.label} exited {describe_status(status)}")
    if keep:
        row.wall_ms.append(wall_ns / 1e6)


def _rss_command(ctx: Context, row: Row) -> list[str]:
    assert row.argv is not None
    if os.access(TIME, os.X_OK):
        return [TIME, "-f", "%M 0", *row.argv]
    return [str(ctx.venv.python), "-I", "-S", "-c", _FORK_HELPER, *row.argv]


def _measure_rss(ctx: Context, row: Row) -> None:
    """Peak RSS (KiB) of the wrapper, from a small forking parent (see the notes)."""
    result = subprocess.run(_rss_command(ctx, row), env=row.env, capture_output=True,
                            text=True, check=False, stdin=subprocess.DEVNULL)
    last = (result.stdout + result.stderr).strip().splitlines()[-1:]
    fields = last[0].split() if last else []
    if result.returncode != 0 or len(fields) != 2 or fields[1] != "0":
        raise BenchError(f"measuring the RSS of {row.label} failed: {result.stderr.strip()}")
    row.rss_mib.append(int(fields[0]) / 1024)


def _targets(row: Row, base: Row) -> str:
    if row.key != "pwsup":
        return ""
    wall = ratio(median(row.wall_ms), median(base.wall_ms))
    rss = ratio(median(row.rss_mib), median(base.rss_mib))
    return "; ".join([
        target(f"start-up ≤ {WALL_TARGET:g}×", None if wall is None else wall <= WALL_TARGET,
               f"{wall or 0:.2f}×"),
        target(f"RSS ≤ {RSS_TARGET:g}×", None if rss is None else rss <= RSS_TARGET,
               f"{rss or 0:.2f}×")])


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _cells(row: Row, base: Row) -> list[str]:
    if row.argv is None:
        return [row.label, "0", row.missing, "", "", "", ""]
    wall = ratio(median(row.wall_ms), median(base.wall_ms))
    rss = ratio(median(row.rss_mib), median(base.rss_mib))
    return [row.label, f"{len(row.wall_ms)}/{len(row.rss_mib)}", spread(row.wall_ms, 1),
            _times(wall), spread(row.rss_mib, 1), _times(rss), _targets(row, base)]


def _onefile_note(built: onefile.OneFile, rows: list[Row]) -> str:
    installed, one = (next(row for row in rows if row.key == key)
                      for key in ("pwsup", "onefile"))
    wall = ratio(median(one.wall_ms), median(installed.wall_ms))
    rss = ratio(median(one.rss_mib), median(installed.rss_mib))
    compared = ("" if wall is None or rss is None else
                f" Against the installed `pwsup`: {wall:.2f}× the wall time, {rss:.2f}× the "
                "peak RSS.")
    return ("`pwsup.pyz` is the one-file executable (`scripts/build_onefile.py`, shiv) built "
            "from this checkout for this run, its interpreter line "
            f"`#!{built.interpreter}` (the venv's interpreter, without the venv), started "
            "once to unpack it into a private `SHIV_ROOT` before anything is timed, as a "
            f"deployed file is after its first start.{compared}")


def _notes(gnu_time: bool) -> list[str]:
    how = ("GNU `/usr/bin/time -f %M`" if gnu_time else
           "`wait4` in a small forking Python helper (no /usr/bin/time here)")
    floor = "~1 MiB" if gnu_time else "~5 MiB, the helper's own"
    return [
        f"Peak RSS: {how}, i.e. the `ru_maxrss` that `wait4` reports for the wrapper: the "
        "largest high-water RSS of the wrapper process and of each descendant it waited for "
        "(max, not sum; descendants nobody waited for are not included). The kernel also "
        "counts the pre-exec memory of the process that forked it, so there is a floor "
        f"({floor}; see the `true` row). The driver cannot use its own `wait4` for this: "
        "a process it spawns would inherit the driver's ~20 MiB high-water mark.",
        "N is wall-time runs / RSS runs. `proc_wrapper` is cloudreactor-procwrapper's own "
        "entry point (launcher `bin/cloudreactor-proc_wrapper`): pwsup's package also "
        "installs a `proc_wrapper` script.",
    ]


def run(ctx: Context) -> Section:
    built = onefile.build(ctx.work)
    rows = _rows(ctx, built)
    live = [row for row in rows if row.argv is not None]
    for index, row in interleaved(live, ctx.reps.warmup + ctx.reps.startup):
        _measure_wall(row, keep=index >= ctx.reps.warmup)
    for _, row in interleaved(live, ctx.reps.rss):
        _measure_rss(ctx, row)
    base = rows[1]
    section = Section(
        "1. Start-up",
        "Wall time of `X true` from just before `posix_spawn` to just after `wait4` returns "
        f"in the driver, median (min–max) after {ctx.reps.warmup} warm-up run(s) per row, "
        "rows interleaved; peak RSS from separate runs.",
        ["command", "N", "wall ms", "× python", "peak RSS MiB", "× python",
         "target (pwsup)"],
        [_cells(row, base) for row in rows])
    section.notes += _notes(os.access(TIME, os.X_OK))
    section.notes.append(_onefile_note(built, rows))
    return section
