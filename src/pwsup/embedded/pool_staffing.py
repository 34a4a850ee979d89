"""IsolatedPool's workers coming and going: forking one when work needs it, and ending one
(crashed, timed out, retired) in a thread of its own. The manager thread (`pool_manager`)
calls these; the state they change is the pool's (`pool_dispatch`).

Decisions, and why:

- **A worker that cannot be set up** (out of processes: ForkError; out of descriptors for
  its pipes, eventfd or pidfd: OSError) is the caller's resource problem, reported, not
  waited out: the queued tasks wait for the workers running, if any, or for one being
  ended (reaped, it frees a process slot: one more attempt then); with neither, nobody
  would ever take them, so each fails with that error. No other attempt is made until
  something changes (a submit, a worker reaped), so the manager never retries in a loop;
  the pool stays usable, and the next submit() tries again.
- **An ender that cannot start** (RLIMIT_NPROC counts threads) is run by the manager
  thread itself, outside the lock: the pool stalls for up to the grace period, but the
  worker is ended and reaped, never left running, and the pool does not break.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from typing import TYPE_CHECKING, cast

from pwsup.embedded.pool_dispatch import Dispatch
from pwsup.embedded.pool_handle import end_worker, spawn_worker
from pwsup.errors import WorkerCrashed, WorkerTimeout
from pwsup.supervisor import procs

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.embedded.pool_dispatch import Settings
    from pwsup.embedded.pool_handle import Item, PoolWorker

_ALL_SIGNALS = signal.valid_signals()


class Staffing(Dispatch):
    """The workers' descriptors as the manager thread watches them (`poller`), its wake-up
    pipe, and the threads ending workers. Runs in the manager thread, under `lock` unless
    it says otherwise."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.exits: dict[int, PoolWorker] = {}  # by pidfd
        self.enders: list[threading.Thread] = []
        self.unstarted: list[threading.Thread] = []
        """Enders that could not start (out of threads): the manager thread runs them."""
        self.ending = 0
        """Workers being ended: each frees its process slot once reaped."""
        self.poller = select.epoll()
        self.poller.register(self.wake_r, select.EPOLLIN)

    def _wake(self) -> None:
        """Any thread: the manager thread goes round its loop once more."""
        if self.wake_w >= 0:
            try:
                os.write(self.wake_w, b"\0")
            except BlockingIOError:
                pass  # plenty of wake-ups are waiting already

    def _end(self, worker: PoolWorker, why: str) -> None:
        """Stop polling `worker` and end it in a thread of its own. Its running task (if
        any) fails as `why` says; the tasks it held ahead go back to the queue."""
        if self.workers.pop(worker.reply_fd, None) is not None and not worker.eof:
            self.poller.unregister(worker.reply_fd)
        if worker.pidfd is not None and self.exits.pop(worker.pidfd, None) is not None:
            self.poller.unregister(worker.pidfd)
        worker.retire()
        release_wakeup(worker)
        running = worker.tasks.popleft() if worker.tasks else None
        for item in worker.tasks:
            item.worker = None
        self.pending.extendleft(reversed(worker.tasks))
        worker.tasks.clear()
        grace = self.settings.grace
        ender = threading.Thread(target=_end_and_settle,
                                 args=(worker, grace, running, why, self._ended),
                                 name=f"IsolatedPool worker {worker.pid} ending", daemon=True)
        self.enders = [t for t in self.enders if t.is_alive()]
        self.ending += 1
        try:
            ender.start()
        except RuntimeError:  # out of threads (RLIMIT_NPROC counts them): the manager
            self.unstarted.append(ender)  # thread runs it, once the lock is released
        else:
            self.enders.append(ender)

    def _ended(self) -> None:
        """An ender's last act (in its thread): the worker is reaped, its process slot
        free, so a worker that could not start may start now."""
        with self.lock:
            self.ending -= 1
            if self.cannot_start is not None:
                self.cannot_start = None
                self._wake()

    def _spawn(self) -> None:
        """Start a worker (outside the lock: a fork takes a while), then dispatch again."""
        with self.lock:
            inherited = (self.wake_r, self.wake_w, self.poller.fileno(),
                         *(fd for w in self.workers.values() for fd in w.fds()))
        try:
            worker = spawn_worker(self.settings.setup, inherited)
        except OSError as error:  # out of processes (ForkError), or of descriptors
            self._spawn_failed(error)
            return
        with self.lock:
            self.workers[worker.reply_fd] = worker
            self.poller.register(worker.reply_fd, select.EPOLLIN)
            if worker.pidfd is not None:
                self.exits[worker.pidfd] = worker
                self.poller.register(worker.pidfd, select.EPOLLIN)
            self._wake()  # dispatch again, in the next round

    def _spawn_failed(self, error: OSError) -> None:
        """No worker could start: the caller's resource problem, which the pool reports
        rather than waits out (or retries in a loop). The queued tasks wait for the
        workers running, if any, or for one being ended (it frees a process slot, and
        another start is tried then); with neither, nobody would ever take them, so each
        fails with this error. The next submit() tries again."""
        with self.lock:
            self.cannot_start = error
            if self.workers or self.ending:
                return
            items = list(self.pending)
            self.pending.clear()
        for item in items:
            if item.running or item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)


def release_wakeup(worker: PoolWorker) -> None:
    """`worker` has ended: a thread watching it is woken (and closes the eventfd, which
    it polls); else the eventfd is closed now."""
    if worker.watched:
        os.eventfd_write(cast("int", worker.wakeup), 1)
    else:
        procs.close_quietly(worker.wakeup)
        worker.wakeup = None


def _end_and_settle(worker: PoolWorker, grace: float, running: Item | None, why: str,
                    ended: Callable[[], None]) -> None:
    """The body of an ender thread: end the worker; fail its running task, if any."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
    try:
        status, killed = end_worker(worker, grace)
    except BaseException as error:
        if running is not None:
            running.future.set_exception(error)
        raise
    finally:
        ended()
    if running is None:
        return
    if why == "timed out":
        timeout = running.timeout or 0.0
        running.future.set_exception(
            WorkerTimeout.after(timeout, pid=worker.pid, grace=grace, killed=killed))
    else:
        running.future.set_exception(WorkerCrashed.from_wait_status(worker.pid, status))
