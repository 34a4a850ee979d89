"""IsolatedPool's manager: one thread in the caller that runs the pool.

```
 submit() ── lock ─┬─ an idle worker: the task goes straight down its task pipe
                   └─ else: pending (deque), and a byte on the wake-up pipe ──┐
                                                                              ▼
 manager thread: poll(wake-up pipe, every worker's reply pipe and pidfd; timeout: the
                 nearest deadline on the monotonic clock)
   reply     ─▶ resolve that task's future; recycle the worker (max_tasks_per_worker,
                memory_limit)
   pidfd     ─▶ the worker died: its running task gets WorkerCrashed; replaced on demand
   deadline  ─▶ the task's worker is stopped with its process tree: WorkerTimeout
   pending   ─▶ to an idle worker, to a new one while fewer than max_workers run, else
                one task ahead to a busy worker
```

Decisions, and why:

- **One thread, one lock.** Everything the pool knows changes under `lock`, held briefly
  (never across a fork, a wait or a future's callbacks): submit() may then hand a task
  straight to an idle worker, so a call's round trip wakes this thread once (for the
  reply) rather than twice.
- **Workers are forked here**, so their parent-death signal (armed per forking *thread*)
  fires only when this thread is gone: after every worker was reaped, or with the caller.
- **With a backlog, each busy worker holds one task ahead** (`AHEAD`) in its task pipe,
  so it starts the next task the moment it answers one, without waiting for this thread:
  the throughput of many small calls. A task ahead is RUNNING (no longer cancellable),
  but has not started: when the worker dies or times out, the tasks it held ahead go back
  to the front of the queue, and only the one it was running fails. Its time limit
  counts from when the worker answered the task before it.
- **Ending a worker blocks** (the grace period, a sweep of /proc), so each ends in a
  short-lived thread (`pool_handle.end_worker`), joined before this one exits. Only that
  thread waits for the worker, after this one stopped polling its descriptors: the pid is
  not reused before it is reaped, so a signal sent to it always reaches the worker.
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

AHEAD = 1
"""Tasks a busy worker may hold beyond the one it runs, when tasks are waiting."""
RETIRE_WAIT = 1.0
"""How long a retired worker (its task pipe closed once it has answered everything) may
take to exit before it is stopped like a timed-out one. It exits at once, unless a
process the caller forked on its own holds a copy of the task pipe."""
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
    the rest runs in the manager thread, under `lock` unless it says otherwise."""

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
        self.enders: list[threading.Thread] = []
        self.settled: list[tuple[Item, frames.Result | frames.Undecodable]] = []
        """Answers to deliver once the lock is released (callbacks run user code)."""
        self.poller = select.poll()
        self.poller.register(self.wake_r, select.POLLIN)

    # -- any thread -----------------------------------------------------------------------

    def put(self, item: Item) -> None:
        """Queue a task, or hand it straight to an idle worker; start the thread first."""
        with self.lock:
            if self.closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self.broken is not None:
                raise RuntimeError("the pool is broken: its manager thread failed"
                                   ) from self.broken
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="IsolatedPool manager",
                                               daemon=True)
                self.thread.start()
            idle = None if self.pending else self._idle_worker()
            if idle is not None:
                item.running = item.future.set_running_or_notify_cancel()  # new: True
                if not self._send(idle, [item]) or item.timeout is not None:
                    self._wake()  # queued again after all, or a new deadline to wait for
                return
            waiting = bool(self.pending)
            self.pending.append(item)
            if not waiting:  # else the manager has work already, and will see this too
                self._wake()

    def close(self, wait: bool, cancel_futures: bool) -> None:
        """Take no more tasks; the queued ones run (unless cancelled), then every worker
        ends. With `wait`, return once they are all reaped and the thread is gone."""
        if os.getpid() != self.owner:
            return  # a forked copy: the workers are the original caller's
        with self.lock:
            self.closing = True
            if cancel_futures:  # not those a dead worker handed back: they are RUNNING
                kept = [item for item in self.pending if item.running]
                for item in self.pending:
                    if not item.running:
                        item.future.cancel()
                self.pending = deque(kept)
            thread = self.thread
            if thread is None:
                self._close_wake_pipe()
                return
            self._wake()
        if wait and thread is not threading.current_thread():
            thread.join()

    def _wake(self) -> None:
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

    def _idle_worker(self) -> PoolWorker | None:
        for worker in self.workers.values():
            if not worker.tasks and self._can_take(worker):
                return worker
        return None

    def _can_take(self, worker: PoolWorker) -> bool:
        quota = self.settings.max_tasks_per_worker
        return worker.task_fd is not None and (quota is None or worker.served < quota)

    def _send(self, worker: PoolWorker, items: list[Item]) -> bool:
        """Hand `items` (RUNNING already) to `worker`; False, with them back at the front
        of the queue, if it died meanwhile (its pidfd will say so; they never ran)."""
        was_idle = not worker.tasks
        try:
            worker.send(items)
        except BrokenPipeError:
            self.pending.extendleft(reversed(items))
            worker.retire()
            return False
        if was_idle:
            worker.deadline = _deadline(items[0])
        return True

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
        with self.lock:
            timeout = self._poll_timeout()
        ready = self.poller.poll(timeout)
        with self.lock:
            for fd, _ in ready:
                if fd == self.wake_r:
                    self._drain_wake_pipe()
                elif fd in self.workers:
                    self._on_reply(self.workers[fd])
                elif fd in self.exits:
                    self._on_exit(self.exits[fd])
            self._check_deadlines()
            wanted = self._dispatch()
            finished = self._finished()
            settled, self.settled = self.settled, []
        for item, message in settled:
            settle(item, message)
        if wanted:
            self._spawn()
        return not finished

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
        """Take the answers `worker` sent."""
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
                self.settled.append((worker.tasks.popleft(), message))
                self._after_task(worker)

    def _after_task(self, worker: PoolWorker) -> None:
        """The next task's deadline; retire the worker once it has served its quota of
        tasks, or outgrown the memory limit (it answers what it holds, then exits)."""
        limit = self.settings.memory_limit
        quota = self.settings.max_tasks_per_worker
        if ((quota is not None and worker.served >= quota)
                or (limit is not None and (worker.rss_bytes or 0) > limit)):
            worker.retire()
        if worker.tasks:
            worker.deadline = _deadline(worker.tasks[0])
        else:
            worker.deadline = None if worker.task_fd else time.monotonic() + RETIRE_WAIT

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
        """Stop polling `worker` and end it in a thread of its own. Its running task (if
        any) fails as `why` says; the tasks it held ahead go back to the queue."""
        if self.workers.pop(worker.reply_fd, None) is not None and not worker.eof:
            self.poller.unregister(worker.reply_fd)
        if worker.pidfd is not None and self.exits.pop(worker.pidfd, None) is not None:
            self.poller.unregister(worker.pidfd)
        worker.retire()
        running = worker.tasks.popleft() if worker.tasks else None
        self.pending.extendleft(reversed(worker.tasks))
        worker.tasks.clear()
        grace = self.settings.grace
        ender = threading.Thread(target=_end_and_settle, args=(worker, grace, running, why),
                                 name=f"IsolatedPool worker {worker.pid} ending", daemon=True)
        self.enders = [t for t in self.enders if t.is_alive()]
        self.enders.append(ender)
        ender.start()

    def _dispatch(self) -> bool:
        """Hand queued tasks to idle workers, else ahead to busy ones once no more workers
        may start. True when a new worker is wanted (started by the caller of this,
        outside the lock)."""
        while self.pending:
            worker = self._idle_worker()
            if worker is None:
                if len(self.workers) < self.settings.max_workers:
                    return True
                worker = self._worker_with_room()
                if worker is None:
                    return False
            items = self._take_pending(worker)
            if items:
                self._send(worker, items)
        return False

    def _worker_with_room(self) -> PoolWorker | None:
        for worker in self.workers.values():
            if len(worker.tasks) <= _ahead() and self._can_take(worker):
                return worker
        return None

    def _take_pending(self, worker: PoolWorker) -> list[Item]:
        """The next queued task for `worker`, each now RUNNING (cancelled ones are
        dropped), or none if all were cancelled."""
        items: list[Item] = []
        while self.pending and not items:
            item = self.pending.popleft()
            if item.running or item.future.set_running_or_notify_cancel():
                item.running = True
                items.append(item)
        return items

    def _spawn(self) -> None:
        """Start a worker (outside the lock: a fork takes a while), then dispatch again."""
        with self.lock:
            inherited = (self.wake_r, self.wake_w,
                         *(fd for w in self.workers.values() for fd in w.fds()))
        try:
            worker = spawn_worker(self.settings.setup, inherited)
        except ForkError as error:
            self._fork_failed(error)
            return
        with self.lock:
            self.workers[worker.reply_fd] = worker
            self.poller.register(worker.reply_fd, select.POLLIN)
            if worker.pidfd is not None:
                self.exits[worker.pidfd] = worker
                self.poller.register(worker.pidfd, select.POLLIN)
            self._wake()  # dispatch again, in the next round

    def _fork_failed(self, error: ForkError) -> None:
        """No worker could start: with none running, nobody will take the next task, so
        it fails with the ForkError; else the running ones carry on."""
        with self.lock:
            item = self.pending.popleft() if self.pending and not self.workers else None
        if item is not None and (item.running or item.future.set_running_or_notify_cancel()):
            item.future.set_exception(error)

    def _finished(self) -> bool:
        """Closing: once nothing is queued, retire the workers as they become idle; done
        when all of them are gone."""
        if not self.closing or self.pending:
            return False
        for worker in self.workers.values():
            if not worker.tasks and worker.task_fd is not None:
                worker.retire()
                worker.deadline = time.monotonic() + RETIRE_WAIT
        return not self.workers

    def _break(self, error: BaseException) -> None:
        """This thread failed (a bug): every future it holds fails, every worker ends."""
        with self.lock:
            self.broken = error
            items = list(self.pending)
            self.pending.clear()
            workers = list(self.workers.values())
            self.workers.clear()
        for worker in workers:
            items += worker.tasks
            end_worker(worker, self.settings.grace)
        for item in items:
            if item.running or item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)


def _ahead() -> int:
    return AHEAD


def _deadline(item: Item) -> float | None:
    return None if item.timeout is None else time.monotonic() + item.timeout


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
