"""The caller's handle on one run_isolated worker, from fork to reap.

```
 caller                                            worker
 os.pipe(); block handled signals; fork ────────▶ (see `worker`)
 pidfd_open(worker); unblock them
 close the pipe's write end
 poll(pipe, pidfd) ◀──── frames ──── pipe ───────
 pidfd readable: wait4() reaps it (and tells what it cost)
 stop: SIGTERM, grace period, SIGKILL, reap
```

Only the caller ever waits for or signals the worker's pid, and only until it has reaped
it (after that the pid may be someone else's). A caller that dies, even by SIGKILL, takes
its worker along: PR_SET_PDEATHSIG fires when the thread that forked exits, and that
thread waits inside run_isolated until the worker is reaped; what fn started is then ended
by the `keeper`, which outlives the caller.

Decisions, and why:

- **Plain `os.fork()`** (through `forking.fork`, pwsup's one fork recipe), an explicit
  start method whatever multiprocessing's default is. `multiprocessing.get_context("fork")
  .Process` would add nothing we need (a sentinel pipe and `os._exit` in a `finally` are a
  few lines) and bring what we do not want: it refuses to start from a daemonic process (a
  pool worker), runs multiprocessing's exit machinery in the worker, reaps on its own
  schedule, and costs an import of multiprocessing.
- **No semaphores, locks or multiprocessing queues**: they need /dev/shm, which AWS Lambda
  lacks. One `os.pipe()` carries everything; nothing here imports multiprocessing.
- **Waiting is on events**: poll() on the pipe and the worker's pidfd (readable once it
  has exited, whoever holds copies of the pipe). Where pidfd_open is unavailable (kernels
  before 5.3, some seccomp profiles) pipe EOF is the sentinel, backed by a waitpid(WNOHANG)
  check every `NO_PIDFD_TICK` seconds, since a process fn forked may hold the pipe open.
"""

from __future__ import annotations

import importlib
import math
import os
import select
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pwsup.embedded import frames, keeper
from pwsup.embedded.worker import SIGNALS, flush_stdio, worker_main
from pwsup.errors import STATUS_LOST
from pwsup.supervisor import forking, procs
from pwsup.supervisor.procs import pidfd_open
from pwsup.util.rawsignal import signal
from pwsup.util.usage import Usage

if TYPE_CHECKING:
    import resource
    from collections.abc import Callable, Iterable, Iterator

    from pwsup.embedded.worker import Call
    from pwsup.supervisor.sweep import Sweep

_READ_CHUNK = 1 << 16
"""The default capacity of a pipe: larger reads only cost bigger allocations."""
NO_PIDFD_TICK = 0.05
"""Without a pidfd, how often a waiting caller also asks waitpid whether the worker exited
(its pipe's EOF may be held back by a process fn forked)."""
MAX_SECONDS = 10 * 365 * 24 * 3600.0
"""The longest timeout or grace period run_isolated and IsolatedPool take: the command
line's (`config.options.MAX_SECONDS`, 10 years; not imported from there, so that the
embedded API does not load the option table). Longer is a typo, not a wish: no limit is
`timeout=None`."""
MAX_WAIT = 24 * 3600.0
"""The longest single poll() or epoll wait in the embedded code: they take milliseconds
as a C int (about 24.9 days at most), so a longer wait is cut into waits of a day, each
followed by a look at the deadline (every wait here is in such a loop)."""


# -- starting one -----------------------------------------------------------------------------


@contextmanager
def spawned(call: Call, grace: float) -> Iterator[WorkerHandle]:
    """A running worker; on the way out, however that happens, it is stopped (if still
    running), reaped, and its file descriptors closed.

    Signals stay blocked from before the fork until the worker has its handle, so an
    interrupt cannot separate a running worker from the only record of its pid: a
    KeyboardInterrupt comes out of the `with` below, when `worker` is already set."""
    worker: WorkerHandle | None = None
    try:
        with _signals_blocked() as mask:
            worker = _fork(call, mask, grace)
        yield worker
    finally:
        if worker is not None:
            try:
                worker.stop(grace)
            finally:
                worker.close()
                keeper.withdraw(worker.cookie)


@contextmanager
def _signals_blocked() -> Iterator[set[int]]:
    """Block, in this thread, the signals that have Python handlers (the only ones whose
    delivery in the worker, before it resets them, would run the caller's code); yield the
    mask to restore, which the worker restores too once it is ready for signals."""
    handled = [signum for signum in SIGNALS if callable(signal.getsignal(signum))]
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        yield mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _fork(call: Call, mask: Iterable[int], grace: float) -> WorkerHandle:
    """Start a worker; the caller keeps only the pipe's read end and a pidfd. Call with
    signals blocked: the worker must not run the caller's Python signal handlers (a
    KeyboardInterrupt there would unwind into the caller's code) before it resets them.

    Before fn runs, the worker registers its group and cookie with the `keeper`, which ends
    them, `grace` seconds after SIGTERM, if the caller is killed outright."""
    read_fd, write_fd = os.pipe()  # both close-on-exec: programs fn runs do not get them
    cookie = procs.new_cookie()
    started = time.monotonic()
    try:
        with keeper.handing_off() as keeper_fd:
            pid = _fork_worker(call, read_fd, write_fd, mask, cookie, lambda: keeper.register(
                keeper_fd, cookie, os.getpid(), grace))
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # from now on, EOF on read_fd means every writer is gone
    try:
        os.setpgid(pid, pid)  # the worker does the same: its own group, whichever runs first
    except OSError:
        pass  # it did already, or has exited
    return WorkerHandle(pid, read_fd, pidfd_open(pid), cookie, started=started)


def _fork_worker(call: Call, read_fd: int, write_fd: int, mask: Iterable[int],
                 cookie: str, ready: Callable[[], None]) -> int:
    """Fork the worker (`forking.fork`: it leaves through os._exit whatever happens, and
    gets SIGKILL if the caller dies). Its return value is the worker's exit code."""
    _preload()
    flush_stdio()  # or the worker inherits unflushed output and writes it a second time
    return forking.fork(lambda _mask: worker_main(call, write_fd, mask, cookie, ready),
                        what="the run_isolated worker", death_signal=signal.SIGKILL,
                        close_fds=(read_fd,))


def _preload() -> None:
    """Import ctypes in the caller, once: PR_SET_PDEATHSIG goes through it, and importing
    it afresh in every worker would add milliseconds to each call."""
    importlib.import_module("ctypes")


# -- watching and stopping one ----------------------------------------------------------------


class WorkerHandle:
    """The caller's handle on one worker: its pid (ours to signal only until reaped), the
    pipe's read end, and its pidfd when the kernel has them."""

    def __init__(self, pid: int, read_fd: int, pidfd: int | None, cookie: str, *,
                 started: float | None = None) -> None:
        self.pid = pid
        self.started = time.monotonic() if started is None else started
        """When it was forked, on the monotonic clock (the start of its wall time)."""
        self.usage: Usage | None = None
        """What the worker cost, from wait4 (fn's processes it reaped included), once
        reaped; None until then, or when something else reaped it (STATUS_LOST)."""
        self.read_fd = read_fd
        self.pidfd = pidfd
        self.cookie = cookie
        """In the environment of every program fn's processes run (see `worker`)."""
        self.delivered = False
        """The outcome arrived: what fn started and left running is then fn's own."""
        self.wait_status: int | None = None  # set once reaped
        self.eof = False
        self._inbox = bytearray()
        self._poller = select.poll()
        os.set_blocking(read_fd, False)
        self._poller.register(read_fd, select.POLLIN)
        if pidfd is not None:
            self._poller.register(pidfd, select.POLLIN)

    def wait_for_event(self, timeout: float | None) -> None:
        """Sleep until the pipe has data, the worker exits, or `timeout` seconds pass."""
        if self.pidfd is None:
            timeout = NO_PIDFD_TICK if timeout is None else min(timeout, NO_PIDFD_TICK)
        ready = {fd for fd, _ in self._poller.poll(poll_milliseconds(timeout))}
        if self.read_fd in ready:
            self.read_available()
        if self.pidfd is None or self.pidfd in ready:
            self.poll_exit()

    def read_available(self) -> None:
        """Move whatever the pipe holds into the inbox, without blocking; note EOF."""
        while not self.eof:
            try:
                chunk = os.read(self.read_fd, _READ_CHUNK)
            except BlockingIOError:
                return
            if not chunk:
                self.eof = True
                self._poller.unregister(self.read_fd)  # it would stay readable forever
                return
            self._inbox += chunk

    def messages(self) -> Iterator[frames.Result | frames.StatusUpdate]:
        """The complete messages in the inbox, in order, each removed as it is yielded."""
        for message in frames.take_messages(self._inbox):
            if isinstance(message, frames.Result):
                self.delivered = True
            yield message

    def poll_exit(self) -> bool:
        """Reap the worker if it has exited (then drain the pipe); True once reaped."""
        if self.wait_status is None:
            self.wait_status = self._wait(os.WNOHANG)
            if self.wait_status is None:
                return False
            self.read_available()  # what it sent just before exiting
        return True

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the worker to exit; True once reaped."""
        deadline = time.monotonic() + timeout
        while not self.poll_exit():
            left = remaining(deadline)
            if left == 0:
                return False
            self.wait_for_event(left)
        return True

    def stop(self, grace: float) -> bool:
        """Stop the worker: SIGTERM, up to `grace` seconds to exit, then SIGKILL; reaped on
        return, however it returns. An interrupt (a second Ctrl-C) in the grace period
        skips to SIGKILL. True if SIGKILL was needed.

        Unless it delivered its outcome, what fn left is stopped with it, the same way and
        within the same grace period: the worker's process group (fn's children stay in it
        unless they leave) and every process carrying the call's cookie (those that left:
        setsid(), double forks)."""
        from pwsup.supervisor.sweep import Sweep

        sweep = None if self.delivered else Sweep(
            group=self.pid, cookie=self.cookie, exclude=frozenset({self.pid}))
        deadline = time.monotonic() + grace
        try:
            killed = self._stop_worker(grace, sweep)
        finally:
            if sweep is not None:
                self._stop_leftovers(sweep, deadline)
        return killed

    @staticmethod
    def _stop_leftovers(sweep: Sweep, deadline: float) -> None:
        """What fn left: the rest of the grace period, then SIGKILL (at once on Ctrl-C)."""
        sweep.killpg = False  # the worker is reaped: the group's id may be anyone's once empty
        try:
            if not sweep.wait(deadline, signal.SIGTERM):
                sweep.kill()
        except KeyboardInterrupt:
            sweep.kill()
            raise
        finally:
            sweep.close()

    def _stop_worker(self, grace: float, sweep: Sweep | None) -> bool:
        """SIGTERM (to the group and the cookie's holders, with `sweep`), `grace` seconds,
        SIGKILL (to the group); True if SIGKILL was needed."""
        if self.poll_exit():
            if sweep is not None:
                sweep.killpg = False  # reaped: the group's id is no longer ours to signal
                sweep.signal(signal.SIGTERM)
            return False
        try:
            if sweep is None:
                os.kill(self.pid, signal.SIGTERM)  # not reaped yet, so the pid is still ours
            else:
                sweep.signal(signal.SIGTERM)  # the worker leads the group: killpg reaches it
            exited = self.wait_exit(grace)
        finally:
            if self.wait_status is None:
                self._kill_and_reap(group=sweep is not None)
        return not exited

    def _kill_and_reap(self, *, group: bool) -> None:
        """SIGKILL and a blocking waitpid, which SIGKILL bounds. An interrupt while waiting
        is held back until the worker is reaped: a zombie would outlive the call."""
        if not (group and procs.send_signal(self.pid, signal.SIGKILL, group=True)):
            os.kill(self.pid, signal.SIGKILL)
        interrupted: KeyboardInterrupt | None = None
        while self.wait_status is None:
            try:
                self.wait_status = self._wait(0)
            except KeyboardInterrupt as e:
                interrupted = e
        if interrupted is not None:
            raise interrupted

    def _wait(self, options: int) -> int | None:
        """`_waitpid`, noting what the worker cost once it is reaped."""
        reaped = _waitpid(self.pid, options)
        if reaped is None:
            return None
        status, rusage = reaped
        if rusage is not None:
            self.usage = Usage.of(rusage, time.monotonic() - self.started)
        return status

    def close(self) -> None:
        os.close(self.read_fd)
        if self.pidfd is not None:
            os.close(self.pidfd)


def check_seconds(name: str, value: float, *, positive: bool = False,
                  none_allowed: bool = False) -> None:
    """Reject a duration outside [0, MAX_SECONDS] (0 excluded with `positive`), NaN and
    infinity included, with a ValueError naming the argument: here, in the caller, before
    anything is forked, rather than an OverflowError from a wait later on."""
    if (value > 0 if positive else value >= 0) and value <= MAX_SECONDS:
        return
    least = "a positive number of seconds" if positive else "a number of seconds >= 0"
    none = ", or None for no limit" if none_allowed else ""
    raise ValueError(f"{name} must be {least} up to {MAX_SECONDS:.0f} (10 years){none}, "
                     f"not {value!r}")


def poll_milliseconds(timeout: float | None) -> int | None:
    """poll()'s argument for a wait of `timeout` seconds (None: no limit), at most
    `MAX_WAIT`: the caller's loop waits again for the rest."""
    return None if timeout is None else math.ceil(min(timeout, MAX_WAIT) * 1000)


def remaining(deadline: float | None) -> float | None:
    """Seconds left until `deadline` on the monotonic clock (0 once passed); None: no
    deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _waitpid(pid: int, options: int) -> tuple[int, resource.struct_rusage | None] | None:
    """The wait status and resource usage (`wait4`: it costs what waitpid costs) once
    `pid` has exited, else None; STATUS_LOST (and no usage) when something else reaped it
    first (SIGCHLD set to SIG_IGN, or a waitpid(-1) loop in this process). ECHILD means
    exited either way, so the pid is no longer ours to signal."""
    try:
        reaped, status, rusage = os.wait4(pid, options)
    except ChildProcessError:
        return STATUS_LOST, None
    return (status, rusage) if reaped else None
