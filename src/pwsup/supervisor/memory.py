"""--memory-limit: an attempt's whole process tree held to a resident-memory budget.

Every `--memory-check-interval` seconds (0.25 by default) a deadline of the parent's loop
measures the tree: the resident set (`/proc/PID/statm`) of every process of the attempt,
added up. The tree is what the leftovers are made of (`leftovers.py`): while pwsup is a
child subreaper, its descendants (the command's group, and whatever left it with setsid()
or a double fork, since orphans are re-parented to pwsup), but the reporter and a secrets
resolver; otherwise also the members of the command's process group and every process
carrying the run's cookie.

Over the limit: one line in the log, then the escalation of a time limit — SIGTERM to the
command's group and to every other process of the tree at once (a child that left the group
is often the one growing), the grace period, SIGKILL to what is left. The attempt fails
(exit 123 when it is the last) and the final report says why.

Nothing here runs without --memory-limit, and no check is made once the command has exited.
"""

from __future__ import annotations

import os

from pwsup.supervisor import procs
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.supervisor.state import Attempt, RunState

MIB = 1024 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(pid: int) -> int:
    """The resident set of `pid` in bytes (0 once it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


class MemoryWatch:
    """Measures each attempt's tree on a timer, and ends an attempt that outgrows its
    limit."""

    def __init__(self, run: RunState, limit: int, interval: float, *,
                 escalate: Callable[[Attempt], None]) -> None:
        self.run = run
        self.escalate = escalate
        """Arms the SIGKILL that follows the grace period (the time limit's own)."""
        self.limit = limit
        self.interval = interval
        self.outside: dict[int, tuple[int | None, bool]] = {}
        """The processes outside the command's group that were sent SIGTERM (pid → its
        pidfd, and whether it was found by the cookie only), to SIGKILL with the group once
        the grace period is over."""

    def start(self, attempt: Attempt) -> None:
        """Measure `attempt`'s tree from now on, every interval."""
        attempt.memory_check = self.run.deadlines.after(
            self.interval, "memory check", lambda: self._check(attempt))

    def tree(self, attempt: Attempt) -> tuple[list[int], frozenset[int]]:
        """The attempt's processes, and which of them were found by the cookie only."""
        run = self.run
        exclude = {run.reporter.pid or 0}
        secrets = getattr(run, "secrets", None)
        if secrets is not None and secrets.resolving is not None:
            exclude.add(secrets.resolving.pid)
        found = procs.descendants(os.getpid(), frozenset(exclude))
        if run.subreaper:
            return found, frozenset()
        known = set(found)
        found += [pid for pid in procs.group_members(attempt.pid) if pid not in known]
        known.update(found)
        holders = [pid for pid in procs.cookie_holders(run.reporter.seed.cookie,
                                                         frozenset(exclude))
                   if pid not in known]
        return found + holders, frozenset(holders)

    def _check(self, attempt: Attempt) -> None:
        run = self.run
        attempt.memory_check = None
        if not attempt.running or run.stop_signal is not None or attempt.timed_out:
            return  # over, or already being ended: its own escalation runs
        pids, holders = self.tree(attempt)
        used = sum(resident_bytes(pid) for pid in pids)
        if used <= self.limit:
            self.start(attempt)
            return
        attempt.memory_exceeded = (used, self.limit)
        run.log.warning(f"attempt {attempt.number} exceeded its memory limit: "
                        f"{used / MIB:.1f} MiB resident in {len(pids)} process(es), limit "
                        f"{self.limit / MIB:.1f} MiB: sending SIGTERM")
        run.signal_command(attempt, signal.SIGTERM)
        self._terminate_outside(attempt, pids, holders)
        self.escalate(attempt)

    def _terminate_outside(self, attempt: Attempt, pids: list[int],
                           holders: frozenset[int]) -> None:
        """SIGTERM the tree's processes that the group's signal did not reach."""
        cookie = self.run.reporter.seed.cookie
        for pid in pids:
            if pid == attempt.pid or self._in_group(pid, attempt.pid):
                continue
            if pid in holders:
                self.outside[pid] = (procs.signal_holder(pid, cookie, signal.SIGTERM), True)
            else:  # a descendant: ours until reaped
                procs.send_signal(pid, signal.SIGTERM, group=False)
                self.outside[pid] = (procs.pidfd_open(pid), False)

    def _in_group(self, pid: int, pgid: int) -> bool:
        if not self.run.params.process_group_termination:
            return False
        try:
            return os.getpgid(pid) == pgid
        except OSError:
            return True  # gone: nothing to signal

    def kill_outside(self) -> None:
        """The grace period is over: SIGKILL what was sent SIGTERM outside the group."""
        cookie = self.run.reporter.seed.cookie
        for pid, (fd, holder) in self.outside.items():
            if fd is not None:
                procs.signal_pidfd(fd, signal.SIGKILL)
                procs.close_quietly(fd)
            elif holder:  # no pidfds: the cookie is checked again right before the signal
                procs.close_quietly(procs.signal_holder(pid, cookie, signal.SIGKILL))
            else:
                procs.send_signal(pid, signal.SIGKILL, group=False)
        self.outside.clear()

    def forget(self, attempt: Attempt) -> None:
        """The command exited: no more checks; what is left of the tree is the leftovers'
        (their own TERM, grace, KILL)."""
        if attempt.memory_check is not None:
            attempt.memory_check.cancel()
            attempt.memory_check = None
        for fd, _holder in self.outside.values():
            procs.close_quietly(fd)
        self.outside.clear()
