"""Ending what is left of a run, from a process that may block while it waits: the reporter
once pwsup's parent is gone, and the caller of run_isolated once its worker is stopped.

What is left is the run's process group (what stayed in it) and every process whose
environment carries the run's cookie (what left the group, with setsid() or a double fork,
and what was re-parented out of the tree). Each gets SIGTERM, then the grace period, then
SIGKILL. Processes that are not our children give no event when they are started, so the
scan is repeated every `RESCAN` seconds while waiting; their exits are awaited on pidfds.
The whole sweep takes at most the grace period plus `KILL_WAIT`.
"""

from __future__ import annotations

import os
import time

from pwsup.supervisor import procs
from pwsup.util.rawsignal import HeldInterrupt, signal
from pwsup.util.waiting import wait

RESCAN = 0.05
"""While waiting, how often the group and the cookie holders are looked for again."""
KILL_WAIT = 1.0
"""After SIGKILL, how long the sweep waits for the last of them (a process in
uninterruptible sleep outlives SIGKILL for a while) before it gives up on them."""


class Sweep:
    """The run's leftovers, found and signalled again as often as needed."""

    def __init__(self, *, group: int | None, cookie: str | None, pids: tuple[int, ...] = (),
                 exclude: frozenset[int] = frozenset()) -> None:
        self.group = group
        """The process group to terminate (None: none)."""
        self.killpg = True
        """Whether the group may be signalled as a whole: no longer once its leader was
        reaped (its id is anyone's once the group is empty); its members are still found
        one by one, and signalled through their pidfds."""
        self.cookie = cookie
        """The run's cookie (None: look for no holders)."""
        self.exclude = exclude | {os.getpid()}
        self.tracked: dict[int, int] = {}  # pid -> pidfd
        """What is being terminated; `pids` from the start (processes known to be ours)."""
        for pid in pids:
            fd = procs.pidfd_open(pid)
            if fd is not None:
                self.tracked[pid] = fd

    def terminate(self, grace: float) -> bool:
        """SIGTERM, up to `grace` seconds for all of it to exit (a process found meanwhile
        gets its SIGTERM when found), then SIGKILL. True if SIGKILL was needed."""
        try:
            self.signal(signal.SIGTERM)
            if self.wait(time.monotonic() + grace, signal.SIGTERM):
                return False
            self.kill()
            return True
        finally:
            self.close()

    def kill(self) -> None:
        """SIGKILL what is left, again for what appears meanwhile, for at most KILL_WAIT."""
        self.signal(signal.SIGKILL)
        self.wait(time.monotonic() + KILL_WAIT, signal.SIGKILL)

    def signal(self, signum: int) -> None:
        """Signal the group and every holder of the cookie (looked for again now)."""
        if self.group is not None and self.killpg:
            procs.send_signal(self.group, signum, group=True)
        self._find()
        for fd in self.tracked.values():
            procs.signal_pidfd(fd, signum)

    def wait(self, deadline: float, signum: int) -> bool:
        """Until `deadline`, wait for everything to exit; a newly found process gets
        `signum`. True once nothing is left."""
        while True:
            for pid in self._find():
                procs.signal_pidfd(self.tracked[pid], signum)
            with HeldInterrupt():
                for pid, fd in list(self.tracked.items()):
                    if procs.exited(fd):
                        procs.close_quietly(self.tracked.pop(pid))
            if not self.tracked:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait(self.tracked.values(), timeout=min(left, RESCAN))

    def _find(self) -> list[int]:
        """Claim (pidfd) the group's live members and the cookie's holders not yet
        tracked; return their pids. A Ctrl-C waits until every descriptor opened is either
        tracked or closed."""
        with HeldInterrupt():
            return self._find_now()

    def _find_now(self) -> list[int]:
        candidates: list[tuple[int, str | None]] = []
        if self.group is not None and procs.send_signal(self.group, 0, group=True):
            candidates += [(pid, None) for pid in procs.group_members(self.group)]
        if self.cookie is not None:
            candidates += [(pid, self.cookie)
                           for pid in procs.cookie_holders(self.cookie, self.exclude)]
        new = []
        for pid, cookie in candidates:
            if pid in self.tracked or pid in self.exclude:
                continue
            fd = self._claim_member(pid) if cookie is None else procs.claim(pid, cookie)
            if fd is not None:
                self.tracked[pid] = fd
                new.append(pid)
        return new

    def _claim_member(self, pid: int) -> int | None:
        """A pidfd for `pid` if, once it is open, the process is still in the group."""
        fd = procs.pidfd_open(pid)
        try:
            if fd is not None and os.getpgid(pid) == self.group:
                return fd
        except OSError:
            pass
        procs.close_quietly(fd)
        return None

    def close(self) -> None:
        with HeldInterrupt():
            for fd in self.tracked.values():
                procs.close_quietly(fd)
            self.tracked.clear()
