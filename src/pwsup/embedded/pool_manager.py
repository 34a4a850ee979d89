"""IsolatedPool's manager: one thread in the caller that runs the pool.

```
 submit() ── lock ─▶ pending (deque) ── a byte on the wake-up pipe ─┐
                                                                    ▼
 manager thread: poll(wake-up pipe, every worker's reply pipe and pidfd; timeout: the
                 nearest deadline on the monotonic clock)
   reply     ─▶ resolve that task's future; recycle the worker (max_tasks_per_worker,
                memory_limit) or give it the next task
   pidfd     ─▶ the worker died: its running task gets WorkerCrashed; replaced on demand
   deadline  ─▶ the task's worker is stopped with its process tree: WorkerTimeout
   pending   ─▶ to an idle worker, or to a new one while fewer than max_workers run
```

Why one thread and not one per worker: everything the pool knows changes here, in one
place, with no lock but the one guarding `pending` (and the flags submit() reads); and
the workers are forked here, so their parent-death signal (armed per forking *thread*)
fires only when this thread is gone, which is after every worker was reaped, or when the
caller dies. Ending a worker blocks (the grace period, a sweep of /proc), so each ends in
a short-lived thread (`pool_handle.end_worker`), joined before this one exits.

Only this thread waits for a worker (through `end_worker`), and only after it stopped
polling the worker's descriptors: the pid is not reused before it is reaped, so a signal
sent to it always reaches the worker.
"""

from __future__ import annotations

import math
import os
import select
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pwsup.embedded import frames
from pwsup.embedded.pool_handle import PoolWorker, end_worker, settle, spawn_worker
from pwsup.errors import WorkerCrashed, WorkerTimeout
from pwsup.supervisor.forking import ForkError

if TYPE_CHECKING:
    from pwsup.embedded.pool_handle import Item
    from pwsup.embedded.pool_worker import WorkerSetup

RETIRE_WAIT = 1.0
"""How long a retired worker (its task pipe closed while it is idle) may take to exit
before it is stopped like a timed-out one. It exits at once, unless a process the caller
forked on its own holds a copy of the task pipe."""
_ALL_SIGNALS = signal.valid_signals()


@dataclass(frozen=True)
class Settings:
    max_workers: int
    grace: float
    max_tasks_per_worker: int | None
    memory_limit: int | None
    setup: WorkerSetup


class Manager:
    """The pool's state and its thread. `put` and `close` are called from any thread;
    everything else runs in the manager thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.pending: deque[Item] = deque()
        self.closing = False
        self.broken: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.workers: dict[int, PoolWorker] = {}  # by reply fd
        self.exits: dict[int, PoolWorker] = {}  # by pidfd
        self.idle: list[PoolWorker] = []
        self.enders: list[threading.Thread] = []
        self.poller = select.poll()
        self.poller.register(self.wake_r, select.POLLIN)

    # -- any thread -----------------------------------------------------------------------

    def put(self, item: Item) -> None:
        """Queue a task; start the thread on the first one."""
        with self.lock:
            if self.closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self.broken is not None:
                raise RuntimeError("the pool is broken: its manager thread failed"
                                   ) from self.broken
            self.pending.append(item)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="IsolatedPool manager",
                                               daemon=True)
                self.thread.start()
            self._wake()

    def close(self, wait: bool, cancel_futures: bool) -> None:
        """Take no more tasks; the queued ones run (unless cancelled), then every worker
        ends. With `wait`, return once they are all reaped and the thread is gone."""
        if os.getpid() != self.owner:
            return  # a forked copy: the workers are the original caller's
        with self.lock:
            self.closing = True
            if cancel_futures:
                while self.pending:
                    self.pending.popleft().future.cancel()
            thread = self.thread
            if thread is None:
                self._close_wake_pipe()
                return
            self._wake()
        if wait and thread is not threading.current_thread():
            thread.join()

    def _wake(self) -> None:
        """Called with the lock held (the manager closes the pipe under it)."""
        if self.wake_w >= 0:
            try:
                os.write(self.wake_w, b"\0")
            except BlockingIOError:
                pass  # plenty of wake-ups are waiting already

    def _close_wake_pipe(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            if fd >= 0:
                os.close(fd)
        self.wake_r = self.wake_w = -1

    # -- the manager thread ---------------------------------------------------------------

    def _run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)  # signals are for the caller
        try:
            while self._step():
                pass
        except BaseException as error:
            self._break(error)
        finally:
            for ender in self.enders:
                ender.join()
            with self.lock:
                self._close_wake_pipe()

    def _step(self) -> bool:
        """One round of the loop; False once closing is complete."""
        for fd, _ in self.poller.poll(self._poll_timeout()):
            if fd == self.wake_r:
                self._drain_wake_pipe()
            elif fd in self.workers:
                self._on_reply(self.workers[fd])
            elif fd in self.exits:
                self._on_exit(self.exits[fd])
        self._check_deadlines()
        self._dispatch()
        return not self._finished()

    def _poll_timeout(self) -> int | None:
        deadlines = [w.deadline for w in self.workers.values() if w.deadline is not None]
        if not deadlines:
            return None
        return max(0, math.ceil((min(deadlines) - time.monotonic()) * 1000))

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _on_reply(self, worker: PoolWorker) -> None:
        """Resolve the futures of the tasks `worker` answered."""
        still_open = worker.read()
        self._take_replies(worker)
        if not still_open:
            worker.eof = True
            self.poller.unregister(worker.reply_fd)  # it would stay readable forever
            if worker.pidfd is None:  # no pidfd to say it exited: EOF says it
                self._end(worker, "crashed")

    def _take_replies(self, worker: PoolWorker) -> None:
        for message in frames.take_pool_messages(worker.inbox):
            if isinstance(message, frames.Cost):
                worker.tasks[0].usage = message.usage
                worker.rss_bytes = message.rss_bytes
            elif isinstance(message, (frames.Result, frames.Undecodable)):
                settle(worker.tasks.popleft(), message)
                self._after_task(worker)

    def _after_task(self, worker: PoolWorker) -> None:
        """Next deadline; retire the worker when it has served its tasks or outgrown the
        memory limit; else it is idle again."""
        worker.deadline = None
        if worker.tasks or worker.task_fd is None:
            return
        limit = self.settings.memory_limit
        quota = self.settings.max_tasks_per_worker
        if ((quota is not None and worker.served >= quota)
                or (limit is not None and (worker.rss_bytes or 0) > limit)):
            worker.retire()
            worker.deadline = time.monotonic() + RETIRE_WAIT
        else:
            self.idle.append(worker)

    def _on_exit(self, worker: PoolWorker) -> None:
        """The worker is gone: what it answered before counts; its running task crashed."""
        if not worker.eof:
            worker.read()
        self._take_replies(worker)
        self._end(worker, "crashed")

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.deadline is not None and worker.deadline <= now:
                self._end(worker, "timed out" if worker.tasks else "retired")

    def _end(self, worker: PoolWorker, why: str) -> None:
        """Stop polling `worker` and end it in a thread of its own; its running task (if
        any) fails as `why` says."""
        self._forget(worker)
        running = worker.tasks.popleft() if worker.tasks else None  # it has one at most
        grace = self.settings.grace
        ender = threading.Thread(target=_end_and_settle, args=(worker, grace, running, why),
                                 name=f"IsolatedPool worker {worker.pid} ending", daemon=True)
        self.enders = [t for t in self.enders if t.is_alive()]
        self.enders.append(ender)
        ender.start()

    def _forget(self, worker: PoolWorker) -> None:
        if self.workers.pop(worker.reply_fd, None) is not None and not worker.eof:
            self.poller.unregister(worker.reply_fd)
        if worker.pidfd is not None and self.exits.pop(worker.pidfd, None) is not None:
            self.poller.unregister(worker.pidfd)
        if worker in self.idle:
            self.idle.remove(worker)
        worker.retire()

    def _dispatch(self) -> None:
        """Hand queued tasks to idle workers, starting workers as needed."""
        while self.pending:
            worker = self.idle.pop() if self.idle else self._spawn()
            if worker is None:
                return
            with self.lock:
                item = self.pending.popleft() if self.pending else None
            if item is None or not (item.running or item.future.set_running_or_notify_cancel()):
                self.idle.append(worker)
                continue
            item.running = True
            try:
                worker.send(item)
            except BrokenPipeError:  # it died idle: its pidfd will say so; the task never ran
                with self.lock:
                    self.pending.appendleft(item)
                continue
            if item.timeout is not None:
                worker.deadline = time.monotonic() + item.timeout

    def _spawn(self) -> PoolWorker | None:
        """A new worker, if fewer than max_workers run and the pool is open."""
        if len(self.workers) >= self.settings.max_workers:
            return None
        inherited = tuple(fd for w in self.workers.values() for fd in w.fds())
        try:
            worker = spawn_worker(self.settings.setup, (self.wake_r, self.wake_w, *inherited))
        except ForkError as error:
            if not self.workers:  # nobody else will take it: that task fails
                with self.lock:
                    item = self.pending.popleft() if self.pending else None
                if item is not None and item.future.set_running_or_notify_cancel():
                    item.future.set_exception(error)
            return None
        self.workers[worker.reply_fd] = worker
        self.poller.register(worker.reply_fd, select.POLLIN)
        if worker.pidfd is not None:
            self.exits[worker.pidfd] = worker
            self.poller.register(worker.pidfd, select.POLLIN)
        return worker

    def _finished(self) -> bool:
        """Closing: retire idle workers once nothing is queued; done when all are gone."""
        with self.lock:
            if not self.closing or self.pending:
                return False
        while self.idle:
            worker = self.idle.pop()
            worker.retire()
            worker.deadline = time.monotonic() + RETIRE_WAIT
        return not self.workers

    def _break(self, error: BaseException) -> None:
        """This thread failed (a bug): every future it holds fails, every worker ends."""
        with self.lock:
            self.broken = error
            pending = list(self.pending)
            self.pending.clear()
        for item in pending:
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)
        for worker in list(self.workers.values()):
            self._forget(worker)
            for item in worker.tasks:
                item.future.set_exception(error)
            end_worker(worker, self.settings.grace)


def _end_and_settle(worker: PoolWorker, grace: float, running: Item | None, why: str) -> None:
    """The body of an ender thread: end the worker; fail its running task, if any."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
    try:
        status, killed = end_worker(worker, grace)
    except BaseException as error:
        if running is not None:
            running.future.set_exception(error)
        raise
    if running is None:
        return
    if why == "timed out":
        timeout = running.timeout or 0.0
        running.future.set_exception(
            WorkerTimeout.after(timeout, pid=worker.pid, grace=grace, killed=killed))
    else:
        running.future.set_exception(WorkerCrashed.from_wait_status(worker.pid, status))
