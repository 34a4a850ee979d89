"""Starting, watching, timing and cleaning up processes, with as little driver work as possible.

Every process is started with `os.posix_spawn` (vfork-based: no copy of the driver, no
Python code between fork and exec), stdio on /dev/null, in a process group of its own, with
SIGPIPE/SIGXFSZ reset to default and an empty signal mask, as a shell would start it.
Events are taken with `poll` on pidfds (`os.pidfd_open`), and the clock is read right after
`poll` returns, so the driver's own bookkeeping is outside every measured interval.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

_STDIO = ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY))
_RESET = (signal.SIGPIPE, signal.SIGXFSZ)


class BenchError(RuntimeError):
    """The benchmark itself could not run (as opposed to a wrapper measuring badly)."""


def now_ns() -> int:
    return time.monotonic_ns()


def spawn(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Start `argv` (argv[0] must be a path) and return its pid."""
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, flags, 0) for fd, flags in _STDIO]
    return os.posix_spawn(argv[0], list(argv), dict(env), file_actions=actions,
                          setpgroup=0, setsigdef=_RESET, setsigmask=())


def wait_readable(fd: int, timeout_s: float) -> int | None:
    """Block until `fd` is readable; the monotonic time right after, or None on time-out."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    ready = poller.poll(max(0.0, timeout_s) * 1000)
    stamp = now_ns()
    return stamp if ready else None


def wait_events(fds: Mapping[str, int], timeout_s: float) -> dict[str, int]:
    """Wait until every fd is readable (or time-out); when each one became readable."""
    poller = select.poll()
    names = {}
    for name, fd in fds.items():
        poller.register(fd, select.POLLIN)
        names[fd] = name
    seen: dict[str, int] = {}
    deadline = now_ns() + int(timeout_s * 1e9)
    while names:
        ready = poller.poll(max(0, deadline - now_ns()) / 1e6)
        stamp = now_ns()
        if not ready:
            break
        for fd, _ in ready:
            seen[names.pop(fd)] = stamp
            poller.unregister(fd)
    return seen


def _kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


def exit_code(status: int) -> int:
    """Shell-style: the exit code, or 128+N for a process that died of signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return str(os.WEXITSTATUS(status))


class Proc:
    """A process this driver started, with a pidfd; SIGKILLed and reaped on close if needed.

    `watch(pid)` adds a pidfd for a process the command reported (e.g. the wrapped child),
    so its death can be timed and it can be killed race-free on close.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.started_ns = now_ns()
        self.pid = spawn(argv, env)
        self.status: int | None = None
        self._watched: list[int] = []
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except OSError:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            raise

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def wait_exit(self, timeout_s: float) -> int | None:
        return wait_readable(self.pidfd, timeout_s)

    def watch(self, pid: int) -> int | None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        self._watched.append(pidfd)
        return pidfd

    def signal(self, signum: int) -> None:
        signal.pidfd_send_signal(self.pidfd, signum)

    def reap(self) -> int:
        """Wait for the process; its wait status."""
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)
        return self.status

    def close(self) -> None:
        for pidfd in self._watched:
            _kill(pidfd)
            os.close(pidfd)
        self._watched.clear()
        if self.status is None:
            _kill(self.pidfd)
            try:
                os.killpg(self.pid, signal.SIGKILL)  # our own process group, not yet reaped
            except ProcessLookupError:
                pass
            self.reap()
        os.close(self.pidfd)


def timed_run(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, int, int]:
    """Run to completion: (wall ns from before spawn to after wait4, ru_maxrss KiB, status)."""
    started = now_ns()
    pid = spawn(argv, env)
    try:
        _, status, usage = os.wait4(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    return now_ns() - started, usage.ru_maxrss, status


class Reports:
    """A FIFO the child writes event lines to (see child.py); parsed lines by kind.

    The driver holds a write end too, so the read end never sees EOF and `poll` only wakes
    for data.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        self._buffer = b""
        self._lines: list[tuple[int, list[str]]] = []

    def __enter__(self) -> Reports:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def expect(self, kind: str, timeout_s: float) -> list[str] | None:
        """The fields after `kind` of the first such line, waiting up to `timeout_s`."""
        found = self.arrival(kind, timeout_s)
        return None if found is None else found[1]

    def arrival(self, kind: str, timeout_s: float) -> tuple[int, list[str]] | None:
        """(when the driver received it, fields after `kind`) of the first `kind` line.

        The receive time is read right after `poll` woke up for the data, so it is exact
        when the driver was already waiting; for a line that was buffered earlier it is
        only an upper bound.
        """
        deadline = now_ns() + int(timeout_s * 1e9)
        self._read(now_ns())
        while True:
            for index, (stamp, fields) in enumerate(self._lines):
                if fields[0] == kind:
                    del self._lines[index]
                    return stamp, fields[1:]
            remaining = (deadline - now_ns()) / 1e9
            woke = wait_readable(self._rfd, remaining) if remaining > 0 else None
            if woke is None:
                return None
            self._read(woke)

    def ready(self, timeout_s: float = 15.0) -> tuple[int, int, int]:
        """READY: (monotonic ns, child pid, child CPU ns). Missing READY is a BenchError."""
        fields = self.expect("READY", timeout_s)
        if fields is None:
            raise BenchError(f"the child never reported READY within {timeout_s} s")
        stamp, pid, cpu = (int(field) for field in fields)
        return stamp, pid, cpu

    def _read(self, stamp: int) -> None:
        while True:
            try:
                data = os.read(self._rfd, 65536)
            except BlockingIOError:
                break
            self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        self._lines.extend((stamp, line.decode().split()) for line in lines if line)

    def close(self) -> None:
        os.close(self._rfd)
        os.close(self._keep)
        self.path.unlink(missing_ok=True)
