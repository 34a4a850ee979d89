"""11. Memory per supervised service: N services `X sleep 1000` under one supervisord, the
PSS of each wrapper's own processes (not the `sleep` command's), per service.

One supervisord per wrapper and mode (offline, online), one after the other, so that no two
wrappers share pages. A wrapper's own processes are the process supervisord started and
everything below it except the processes executing `sleep` (pwsup: its parent and the
reporter it forks; proc_wrapper, tini, dumb-init: one process each). The figure is taken
once the services have settled: every service's command runs, online every execution has
been created and sent a heartbeat, and two scans `SETTLE_INTERVAL` apart see the same
processes and a total PSS within `SETTLE_RATIO` of each other.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pwbench import proctree
from pwbench.context import Context
from pwbench.fake_api import FakeApi
from pwbench.procs import BenchError
from pwbench.report import Section, codes, ratio
from pwbench.supervisord import Supervisord
from pwbench.wrappers import Wrapper

WRAPPERS = ("pwsup", "proc_wrapper", "tini", "dumb-init")
ONLINE = ("pwsup", "proc_wrapper")
"""The wrappers that report to an API server."""
ONLINE_ENV = {
    "PROC_WRAPPER_API_KEY": "bench-key",
    "PROC_WRAPPER_TASK_NAME": "bench-memory",
    "PROC_WRAPPER_OFFLINE_MODE": "FALSE",
    "PROC_WRAPPER_API_HEARTBEAT_INTERVAL_SECONDS": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
SLEEP_SECONDS = "1000"
SETTLE_INTERVAL = 0.5
SETTLE_RATIO = 0.01
START_CAP = 120.0
"""Seconds the services may take to settle before the variant is called broken."""


@dataclass
class Scan:
    """One look at the services: PSS (KiB) and process count of each wrapper's own
    processes, how many commands run, and which processes were counted."""

    pss_kib: list[int] = field(default_factory=list)
    top_kib: list[int] = field(default_factory=list)
    """The part of `pss_kib` that is the top process's (the one supervisord started)."""
    processes: list[int] = field(default_factory=list)
    commands: int = 0
    counted: frozenset[proctree.Seen] = frozenset()

    @property
    def total(self) -> int:
        return sum(self.pss_kib)


@dataclass
class Outcome:
    """A variant's result: MiB per service (one value per service), processes, notes."""

    mib: list[float] = field(default_factory=list)
    top_mib: list[float] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    settle_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    missing: str = ""

    @property
    def mean(self) -> float | None:
        return sum(self.mib) / len(self.mib) if self.mib else None


def _scan(sup: Supervisord, command: str) -> Scan:
    kids = proctree.children()
    scan = Scan()
    counted: set[proctree.Seen] = set()
    for service in sup.services(kids):
        own, commands = proctree.own_processes(service, kids, command)
        pss = {p.pid: proctree.pss_kib(p.pid) for p in own}
        scan.pss_kib.append(sum(pss.values()))
        scan.top_kib.append(pss.get(service.pid, 0))
        scan.processes.append(len(own))
        scan.commands += commands
        counted.update(own)
    scan.counted = frozenset(counted)
    return scan


def _settled(before: Scan | None, now: Scan, count: int) -> bool:
    return (before is not None and len(now.pss_kib) == count and now.commands == count
            and before.counted == now.counted
            and abs(now.total - before.total) <= SETTLE_RATIO * max(before.total, 1))


def _wait_settled(sup: Supervisord, command: str, count: int,
                  online_ready: Callable[[], bool]) -> tuple[Scan, float]:
    """Scan every SETTLE_INTERVAL until the services have settled; (last scan, seconds)."""
    started = time.monotonic()
    before: Scan | None = None
    while True:
        now = _scan(sup, command)
        if online_ready() and _settled(before, now, count):
            return now, time.monotonic() - started
        if time.monotonic() - started > START_CAP or sup.process.poll() is not None:
            raise BenchError(
                f"{len(now.pss_kib)} of {count} services up, {now.commands} commands running "
                f"after {time.monotonic() - started:.0f} s; supervisord.log ends:\n"
                + sup.log_tail())
        before = now
        time.sleep(SETTLE_INTERVAL)


def _command(wrapper: Wrapper, sleep: str, online: bool) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment of one service; online configured by environment only
    (proc_wrapper 6.0.2 takes no `--`)."""
    if not online:
        return wrapper.command([sleep, SLEEP_SECONDS])
    assert wrapper.exe
    dashes = ["--"] if wrapper.key == "pwsup" else []
    return [wrapper.exe, *dashes, sleep, SLEEP_SECONDS], dict(ONLINE_ENV)


def _all_heard(api: FakeApi, count: int) -> Callable[[], bool]:
    """Online: every execution created and each one's first heartbeat (PATCH) received."""
    def ready() -> bool:
        heard = {r.execution for r in api.snapshot() if r.method == "PATCH"}
        return len(api.created) >= count and heard >= set(api.created)
    return ready


def _variant(ctx: Context, wrapper: Wrapper, api: FakeApi | None, directory: Path
             ) -> Outcome:
    count = ctx.reps.services
    sleep = shutil.which("sleep") or "/bin/sleep"
    argv, extra = _command(wrapper, sleep, api is not None)
    if api is not None:
        api.scenario()
        extra["PROC_WRAPPER_API_BASE_URL"] = api.base_url
    ready = (lambda: True) if api is None else _all_heard(api, count)
    outcome = Outcome()
    sup = Supervisord(ctx.venv, directory, argv, {**ctx.env, **extra}, count)
    try:
        scan, outcome.settle_s = _wait_settled(sup, str(Path(sleep).resolve()), count, ready)
    finally:
        sup.close()
        outcome.notes += sup.leftovers
    outcome.mib = [kib / 1024 for kib in scan.pss_kib]
    outcome.top_mib = [kib / 1024 for kib in scan.top_kib]
    outcome.processes = scan.processes
    return outcome


def _measure(ctx: Context) -> dict[tuple[str, bool], Outcome]:
    results: dict[tuple[str, bool], Outcome] = {}
    with FakeApi() as api:
        for online in (False, True):
            for key in WRAPPERS if not online else ONLINE:
                wrapper = ctx.wrappers[key]
                if not wrapper.installed:
                    results[key, online] = Outcome(missing="not installed: skipped")
                    continue
                where = ctx.work / f"supervisord-{key}-{'online' if online else 'offline'}"
                results[key, online] = _variant(ctx, wrapper, api if online else None, where)
    return results


def _ratio(value: float | None, base: float | None) -> str:
    found = ratio(value, base)
    return "—" if found is None else f"{found:.2f}×"


def _mib(outcome: Outcome | None) -> str:
    if outcome is None:
        return "— (does not report)"
    if outcome.missing or outcome.mean is None:
        return outcome.missing or "—"
    return f"{outcome.mean:.2f} ({min(outcome.mib):.2f}–{max(outcome.mib):.2f})"


def _row(key: str, label: str, results: dict[tuple[str, bool], Outcome]) -> list[str]:
    offline, online = results[key, False], results.get((key, True))
    base_off = results["proc_wrapper", False].mean
    base_on = results["proc_wrapper", True].mean
    processes = " / ".join(codes(str(n) for n in o.processes) for o in (offline, online)
                           if o is not None and o.processes)
    return [label, processes or "—", _mib(offline), _ratio(offline.mean, base_off),
            _mib(online), _ratio(online.mean if online else None, base_on),
            _ratio(online.mean if online else None, offline.mean)]


def _notes(ctx: Context, results: dict[tuple[str, bool], Outcome]) -> list[str]:
    notes = [
        "PSS from `/proc/PID/smaps_rollup`, summed over each service's own processes (the "
        "process supervisord started and its descendants, minus the `sleep` command), then "
        "per service: mean (min–max) over the services. Pages shared by several processes "
        "count 1/n to each, among them the interpreter and libraries shared with "
        "supervisord and the driver, and the copy-on-write pages a forked reporter shares "
        "with pwsup's parent.",
        "Online: `PROC_WRAPPER_API_KEY`, `..._TASK_NAME`, `..._OFFLINE_MODE=FALSE`, "
        "`..._API_HEARTBEAT_INTERVAL_SECONDS=1` and `..._API_BASE_URL` pointing at the "
        "benchmark's fake API on 127.0.0.1 (`pwbench/fake_api.py`); measured once every "
        "execution was created and had sent a heartbeat. proc_wrapper offline runs with "
        "`--offline-mode`.",
    ]
    settle = ", ".join(f"{key}{' online' if online else ''} {o.settle_s:.1f} s"
                       for (key, online), o in results.items() if o.mib)
    notes.append(f"Time from starting supervisord until the services had settled: {settle}.")
    split = "; ".join(
        f"{key}{' online' if online else ''} {sum(o.top_mib) / len(o.top_mib):.2f} + "
        f"{(sum(o.mib) - sum(o.top_mib)) / len(o.mib):.2f}"
        for (key, online), o in results.items() if o.mib and max(o.processes) > 1)
    if split:
        notes.append("MiB per service of the top process (the one supervisord started) + "
                     f"of the processes it forked: {split}.")
    for (key, online), outcome in results.items():
        notes += [f"{key}{' online' if online else ''}: {n}" for n in outcome.notes]
    return notes


def run(ctx: Context) -> Section:
    results = _measure(ctx)
    rows = [_row(key, ctx.wrappers[key].label.split()[0], results) for key in WRAPPERS]
    count = ctx.reps.services
    section = Section(
        "11. Memory per supervised service",
        f"{count} services `X sleep {SLEEP_SECONDS}` under one supervisord (benchmarks/.venv's, "
        "`numprocs`, SIGTERM to stop), one supervisord per wrapper and mode, one after the "
        "other; PSS of each wrapper's own processes, in MiB per service.",
        ["wrapper", "processes per service (offline / online)",
         "offline MiB, mean (min–max)", "× proc_wrapper", "online MiB, mean (min–max)",
         "× proc_wrapper", "online ÷ offline"],
        rows)
    section.notes += _notes(ctx, results)
    return section
