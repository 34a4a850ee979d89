"""Processes as /proc shows them, waiting on them without sleeping, and cleaning them up.

Identity: pids are reused (pid_max may be as low as 32768 and other programs run on the same
machine), so a process seen once is remembered as a `Proc` — pid plus start time — and is
"alive" only while a process with that pid *and* that start time exists and is not a zombie.

Waiting: a process's exit is awaited with a pidfd (readable once it has exited, also for a
process that is not our child). `wait_until` polls, and is only for conditions that have no
event to wait on (a title appearing in /proc, a process showing up in a list).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

PR_SET_CHILD_SUBREAPER = 36
DEAD_STATES = frozenset({"Z", "X", "x"})


def set_child_subreaper(enabled: bool) -> None:
    """Make this process a child subreaper: orphans among its descendants come back to it.

    The test process uses this so that nothing a test started (a daemon that called
    setsid(), a reporter whose parent was SIGKILLed) can escape to init: every leftover is
    a descendant of the test process, where the cleanup fixture finds it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def state(pid: int) -> str | None:
    """The one-letter state of a process (R, S, Z, ...), or None when there is no such pid."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of stat), or None."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def pgid_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else None


def cmdline(pid: int) -> str | None:
    """The command line as one string (NULs as spaces, padding stripped), or None if gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def children(pid: int) -> list[int]:
    """Direct children of `pid` (zombies included), from /proc/<pid>/task/*/children."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return found


def pid_tree(pid: int) -> list[int]:
    """Every descendant of `pid` (not `pid` itself), parents before children."""
    found: list[int] = []
    queue = children(pid)
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children(current))
    return found


@dataclass(frozen=True)
class Proc:
    """A process as seen once: pid and start time, so a reused pid is not mistaken for it."""

    pid: int
    started: int | None

    @classmethod
    def of(cls, pid: int) -> Proc:
        return cls(pid, start_time(pid))

    def alive(self) -> bool:
        """Running (or stopped), and not a zombie: it has not exited."""
        fields = _stat_fields(self.pid)
        if fields is None or int(fields[19]) != self.started:
            return False
        return fields[0] not in DEAD_STATES

    def cmdline(self) -> str | None:
        return cmdline(self.pid) if self.alive() else None


def alive(pid: int) -> bool:
    """Whether some process with this pid exists and is not a zombie."""
    st = state(pid)
    return st is not None and st not in DEAD_STATES


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = 0.01) -> float:
    """Poll `predicate` until it is true; return the time it took. Raise AssertionError
    naming `what` when `timeout` seconds pass first. Only for conditions with no event."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None when the process no longer exists."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def wait_for_exit(procs: Iterable[Proc], timeout: float) -> float:
    """Wait until every process has exited (zombie or gone); return when, on the monotonic
    clock. Raise AssertionError listing the survivors when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    fds: dict[int, Proc] = {}
    try:
        for proc in procs:
            fd = open_pidfd(proc.pid)
            if fd is None:
                continue
            if start_time(proc.pid) != proc.started:
                os.close(fd)  # the pid was reused: the process we knew has exited
                continue
            fds[fd] = proc
        while True:
            for fd in [fd for fd, proc in fds.items() if not proc.alive()]:
                os.close(fd)
                del fds[fd]
            if not fds:
                return time.monotonic()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                left = [(p.pid, cmdline(p.pid)) for p in fds.values()]
                raise AssertionError(f"still running after {timeout:g} s: {left}")
            ready, _, _ = select.select(list(fds), [], [], remaining)
            for fd in ready:
                os.close(fd)
                del fds[fd]
    finally:
        for fd in fds:
            os.close(fd)


def exits_within(proc: Proc, timeout: float) -> bool:
    """True if `proc` exits within `timeout` seconds (a pidfd wait), False if still alive."""
    try:
        wait_for_exit([proc], timeout)
    except AssertionError:
        return False
    return True


def kill_quietly(pid: int, signum: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def kill_tree(root: int, *, include_root: bool = True, timeout: float = 5.0) -> list[Proc]:
    """SIGKILL every live descendant of `root` (and `root`), until none is left.

    Descendants are frozen with SIGSTOP first, so none can fork a new one between the
    listing and the kill. Returns what was found alive (before killing)."""
    found: dict[int, Proc] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = pid_tree(root) + ([root] if include_root else [])
        live = [Proc.of(pid) for pid in pids]
        live = [p for p in live if p.alive()]
        if not live:
            break
        for proc in live:
            found.setdefault(proc.pid, proc)
            kill_quietly(proc.pid, signal.SIGSTOP)
        for proc in live:
            kill_quietly(proc.pid, signal.SIGKILL)
        with contextlib.suppress(AssertionError):
            wait_for_exit(live, 1.0)
    return list(found.values())


def reap_zombie_children(skip: Iterable[int] = ()) -> list[int]:
    """waitpid() every child of this process that is a zombie (except `skip`)."""
    reaped = []
    skipped = set(skip)
    for pid in children(os.getpid()):
        if pid in skipped or state(pid) not in DEAD_STATES:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
            reaped.append(pid)
    return reaped



def keeper_started() -> None:
    """Start run_isolated's keeper in this process now, if it is not running: it lives as long
    as its caller (here, pytest), so a test snapshotting processes and descriptors before a
    call takes it first (process tests close it after each test, see conftest)."""
    from pwsup.embedded import keeper

    with keeper.handing_off():
        pass
