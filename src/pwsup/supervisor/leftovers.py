"""Leftovers: the command exited, but not everything it started did.

Whatever is still running below pwsup once the command is reaped (apart from the reporter),
and whatever carries the run's cookie in its environment wherever it is in the process tree
(a daemon re-parented away from pwsup, below a subreaper of its own),
gets SIGTERM, the grace period, then SIGKILL, and the attempt is over only when none is left
(unless --keep-descendants says to leave them be): a retry never starts beside the previous
attempt's stragglers, and pwsup never exits leaving them orphaned. Each one is waited on by
its pidfd where the kernel has them, by a short re-check where it does not.
"""

from __future__ import annotations

import os

from pwsup.supervisor import procs
from pwsup.supervisor.state import Phase
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.supervisor.deadlines import Deadline
    from pwsup.supervisor.state import RunState

STRAGGLER_RECHECK = 0.1
"""Re-check interval for leftover processes where pidfds are unavailable (old kernels)."""


class Leftovers:
    """Terminates what an attempt left behind, then calls `done`."""

    def __init__(self, run: RunState, *, reap: Callable[[], None],
                 done: Callable[[], None]) -> None:
        self.run = run
        self._reap = reap
        """The loop's reaper: collects exit statuses, and sweeps again while this is active."""
        self._done = done
        """Called once nothing is left: the attempt is over."""
        self.pidfds: dict[int, int] = {}  # pidfd -> pid
        self.signalled: set[int] = set()
        self.kill: Deadline | None = None
        self.recheck: Deadline | None = None

    @property
    def active(self) -> bool:
        """Some leftover is being waited for."""
        return bool(self.pidfds) or self.kill is not None

    def clean_up(self) -> None:
        """The command was reaped: clean up after it."""
        self.run.phase = Phase.CLEANING
        self.sweep()

    def sweep(self) -> None:
        """Terminate what the command left behind (TERM, grace, KILL); move on once none is left."""
        run = self.run
        if run.phase is not Phase.CLEANING:
            return
        left, holders = self._find()
        for fd in [fd for fd, pid in self.pidfds.items() if pid not in left]:
            procs.close_quietly(fd)
            del self.pidfds[fd]
        if not left:
            self._finished()
            return
        new = [pid for pid in left if pid not in self.signalled]
        if new:
            run.log.info(f"{len(new)} process(es) left behind by the command: sending SIGTERM")
            for pid in new:
                self.signalled.add(pid)
                self._terminate(pid, pid in holders)
        if self.kill is None:
            self.kill = run.deadlines.after(
                run.params.process_termination_grace_period, "SIGKILL leftovers",
                self._kill_all)
        if len(self.pidfds) < len(left) and self.recheck is None:
            # Some have no pidfd (already exited, or an old kernel): nothing will wake us.
            self.recheck = run.deadlines.after(
                STRAGGLER_RECHECK, "re-check leftovers", self._recheck)

    def _find(self) -> tuple[list[int], frozenset[int]]:
        """What is left: our descendants (the subreaper's orphans among them), then the
        cookie's holders that are not; and which of them were found by the cookie only."""
        run = self.run
        if run.params.keep_descendants:
            return [], frozenset()
        exclude = frozenset({run.reporter.pid} if run.reporter.pid else ())
        left = procs.descendants(os.getpid(), exclude)
        if run.subreaper:
            # While pwsup lives as a subreaper, the kernel re-parents every orphan of the
            # command's tree (setsid'd and double-forked daemons too) to it: its descendants
            # are everything the cookie could find, and the /proc scan would only add time
            # to every exit. The cookie finds them once pwsup is gone (the watchdog).
            return left, frozenset()
        known = set(left)
        holders = [pid for pid in procs.cookie_holders(run.reporter.seed.cookie, exclude)
                   if pid not in known]
        return left + holders, frozenset(holders)

    def _terminate(self, pid: int, holder: bool) -> None:
        """SIGTERM one leftover and watch its pidfd. A descendant is signalled by pid (it is
        ours until we reap it); a holder found by its cookie only through a pidfd opened
        before its cookie is checked again, so a reused pid is never signalled."""
        if holder:
            pidfd = procs.signal_holder(pid, self.run.reporter.seed.cookie, signal.SIGTERM)
        else:
            procs.send_signal(pid, signal.SIGTERM, group=False)
            pidfd = procs.pidfd_open(pid)
        if pidfd is not None:
            self.pidfds[pidfd] = pid

    def on_exit(self, fd: int) -> None:
        """A leftover's pidfd became readable: it exited."""
        if self.pidfds.pop(fd, None) is None:
            return  # closed earlier in this same round of events (the number may be reused)
        procs.close_quietly(fd)
        self._reap()
        self.sweep()

    def _recheck(self) -> None:
        self.recheck = None
        self._reap()
        self.sweep()

    def _kill_all(self) -> None:
        run = self.run
        self.kill = None  # one found after this gets a grace period of its own, then SIGKILL
        left, holders = self._find()
        if left:
            run.log.warning(f"{len(left)} leftover process(es) ignored SIGTERM: sending SIGKILL")
        watched = {pid: fd for fd, pid in self.pidfds.items()}
        for pid in left:
            if pid in holders:
                fd = watched.get(pid)
                if fd is not None:
                    procs.signal_pidfd(fd, signal.SIGKILL)
                elif (fd := procs.signal_holder(pid, run.reporter.seed.cookie,
                                                signal.SIGKILL)) is not None:
                    self.pidfds[fd] = pid
            else:
                procs.send_signal(pid, signal.SIGKILL, group=False)

    def _finished(self) -> None:
        for fd in self.pidfds:
            procs.close_quietly(fd)
        self.pidfds.clear()
        self.signalled.clear()
        for deadline in (self.kill, self.recheck):
            if deadline is not None:
                deadline.cancel()
        self.kill = self.recheck = None
        self._done()
