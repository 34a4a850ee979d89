"""IsolatedPool's manager: one thread in the caller that runs the pool.

```
 submit() ── lock ─┬─ an idle worker: the task goes straight down its task pipe
                   └─ else: pending (deque), and a byte on the wake-up pipe ──┐
                                                                              ▼
 manager thread: epoll(wake-up pipe, every worker's reply pipe and pidfd; timeout: the
                 nearest deadline on the monotonic clock)
   reply     ─▶ resolve that task's future (`pool_dispatch`: what an answer changes)
   pidfd     ─▶ the worker died: its running task gets WorkerCrashed; replaced on demand
   deadline  ─▶ the task's worker is stopped with its process tree: WorkerTimeout
   pending   ─▶ to a worker (`pool_dispatch`), or a new worker is forked (`pool_staffing`:
                 starting and ending workers, and what a worker that cannot start does)
 future.result() ── waits on the worker's reply pipe itself (`wait_for`)
```

Decisions, and why:

- **One thread, one lock.** Everything the pool knows changes under `lock`, held briefly
  (never across a fork, a wait or a future's callbacks), so submit() may hand a task
  straight to an idle worker, and a thread waiting for a result may take the answer
  itself: a trivial call's round trip is then two wake-ups (the worker, then the caller),
  not four (this thread before and after the worker).
- **Workers are forked here**, so their parent-death signal (armed per forking *thread*)
  fires only when this thread is gone: after every worker was reaped, or with the caller.
- **With a backlog, each busy worker holds one task ahead** (`pool_dispatch.AHEAD`) in its
  task pipe, so it starts the next task the moment it answers one, without waiting for
  this thread: the throughput of many small calls. ProcessPoolExecutor does the same
  (one call queued beyond its workers). A task ahead is RUNNING (no longer cancellable),
  but has not started: when the worker dies or times out, the tasks it held ahead go back
  to the front of the queue, and only the one it was running fails. Its time limit
  counts from when the worker answered the task before it.
- **Ending a worker blocks** (the grace period, a sweep of /proc), so each ends in a
  short-lived thread (`pool_staffing`), joined before this one exits. Only that
  thread waits for the worker, after this one stopped watching its descriptors: the pid
  is not reused before it is reaped, so a signal sent to it always reaches the worker.
"""

from __future__ import annotations

import math
import os
import select
import signal
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, cast

from pwsup.embedded.handle import MAX_WAIT
from pwsup.embedded.pool_dispatch import RETIRE_WAIT
from pwsup.embedded.pool_handle import end_worker, settle
from pwsup.embedded.pool_staffing import Staffing, release_wakeup
from pwsup.supervisor import procs

if TYPE_CHECKING:
    from pwsup.embedded.pool_dispatch import Settings
    from pwsup.embedded.pool_handle import Item, PoolWorker

_ALL_SIGNALS = signal.valid_signals()
SPIN = 50e-6
"""Seconds a thread waiting for a result polls the reply pipe before it sleeps
(`_poll_spinning_first`)."""


class Manager(Staffing):
    """The pool's thread, and its descriptors. `put`, `close` and `wait_for` are called
    from any thread; the rest runs in the manager thread, under `lock` unless it says
    otherwise."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.owner = os.getpid()
        self.broken: BaseException | None = None
        self.thread: threading.Thread | None = None

    # -- any thread -----------------------------------------------------------------------

    def put(self, item: Item) -> None:
        """Queue a task, or hand it straight to an idle worker; start the thread first."""
        with self.lock:
            if self.closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self.broken is not None:
                raise RuntimeError("the pool is broken: its manager thread failed"
                                   ) from self.broken
            if self.thread is None:  # recorded once started: if it cannot start (out of
                # threads), submit() raises, and the pool is as before; the next one retries
                thread = threading.Thread(target=self._run, name="IsolatedPool manager",
                                          daemon=True)
                thread.start()
                self.thread = thread
            self.cannot_start = None  # a worker may start now: let the manager try again
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
                self.poller.close()
                return
            self._wake()
        if wait and thread is not threading.current_thread():
            thread.join()

    def wait_for(self, item: Item, timeout: float | None) -> None:
        """Called by a thread about to wait for `item`'s result: wait on its worker's
        reply pipe itself, and take the answer there. The manager stops watching that
        pipe meanwhile (epoll: the change reaches it even while it waits), so one wake-up
        (the worker's write waking the waiter) replaces two (the manager, then the
        waiter): the larger part of a trivial call's round trip. Returns when the future
        is done, at `timeout`, or when the worker is gone or already watched by another
        thread (then the caller waits on the future as usual). The worker may end
        meanwhile (its pidfd, a deadline): the manager then signals the worker's eventfd,
        which the waiter watches too."""
        if threading.current_thread() is self.thread or os.getpid() != self.owner:
            return  # a done-callback in the manager thread must not wait here
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                worker = item.worker
                if (item.future.done() or worker is None or worker.watched
                        or self.workers.get(worker.reply_fd) is not worker or worker.eof):
                    return
                worker.watched = True
                self.poller.modify(worker.reply_fd, 0)
            poller = select.poll()
            poller.register(worker.reply_fd, select.POLLIN)
            poller.register(cast("int", worker.wakeup), select.POLLIN)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready = _poll_spinning_first(poller, left)
            finally:
                more = self._take_answers(worker)
            if not ready or not more:
                return

    def _take_answers(self, worker: PoolWorker) -> bool:
        """After a waiter's poll: read and settle what `worker` answered, and let the
        manager watch its pipe again; False when the waiter should stop."""
        with self.lock:
            worker.watched = False
            if self.workers.get(worker.reply_fd) is not worker:  # ended meanwhile
                procs.close_quietly(worker.wakeup)  # left for the watcher to close
                worker.wakeup = None
                return False
            still_open = worker.read()
            self._take_replies(worker)
            self.poller.modify(worker.reply_fd, select.EPOLLIN)  # EOF: the manager's
            # What the manager would have done next: queued tasks to the idle worker; and
            # it must hear of a new deadline (a task ahead, a retirement) or of closing.
            if (self.pending and self._dispatch()) or worker.deadline or self.closing:
                self._wake()
            settled, self.settled = self.settled, []
        for done, message in settled:
            settle(done, message)
        return still_open

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
                self.poller.close()

    def _step(self) -> bool:
        """One round of the loop; False once closing is complete."""
        with self.lock:
            timeout = self._poll_timeout()
        ready = self.poller.poll(-1 if timeout is None else timeout / 1000)
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
            unstarted, self.unstarted = self.unstarted, []
        for item, message in settled:
            settle(item, message)
        for ender in unstarted:  # blocks this thread up to the grace period: the one way
            ender.run()          # left to end a worker (it must not live on)
        if wanted:
            self._spawn()
        return not finished

    def _poll_timeout(self) -> int | None:
        deadlines = [w.deadline for w in self.workers.values() if w.deadline is not None]
        if not deadlines:
            return None
        left = min(min(deadlines) - time.monotonic(), MAX_WAIT)  # epoll's C int of ms
        return max(0, math.ceil(left * 1000))

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _on_reply(self, worker: PoolWorker) -> None:
        """Take the answers `worker` sent (unless a waiting caller watches its pipe: the
        event is from before, and the answers are the watcher's to take)."""
        if worker.watched:
            return
        still_open = worker.read()
        self._take_replies(worker)
        if not still_open:
            worker.eof = True
            self.poller.unregister(worker.reply_fd)  # it would stay readable forever
            if worker.pidfd is None:  # no pidfd to say it exited: EOF says it
                self._end(worker, "crashed")

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
        """This thread failed (a bug): every future it holds fails (those answered already
        get their answers), every worker ends, and none of their descriptors stays open
        (`end_worker` closes the pipes and pidfd; the eventfd is the pool's own)."""
        with self.lock:
            self.broken = error
            items = list(self.pending)
            self.pending.clear()
            workers = list(self.workers.values())
            self.workers.clear()
            self.exits.clear()
            for worker in workers:
                release_wakeup(worker)
            settled, self.settled = self.settled, []
            unstarted, self.unstarted = self.unstarted, []
        for item, message in settled:  # answered before the failure
            settle(item, message)
        for ender in unstarted:
            ender.run()
        for worker in workers:
            items += worker.tasks
            end_worker(worker, self.settings.grace)
        for item in items:
            if item.running or item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)


def _poll_spinning_first(poller: select.poll, timeout: float | None) -> list[tuple[int, int]]:
    """`poller.poll(timeout)`, but polling without sleeping for the first `SPIN` seconds.

    A trivial task's answer comes back within tens of microseconds, and a thread that went
    to sleep takes about as long again to be woken on another CPU (on a small VM, the idle
    vCPU itself must be woken): measured on 2 vCPUs, a trivial call's round trip drops from
    0.10 to 0.06 ms. A longer task costs the waiting thread `SPIN` of CPU time once, and
    each `poll(0)` lets the caller's other threads have the GIL."""
    ready = poller.poll(0)
    if not ready:
        end = time.perf_counter() + min(SPIN, timeout if timeout is not None else SPIN)
        while not ready and time.perf_counter() < end:
            ready = poller.poll(0)
    if not ready:
        left = None if timeout is None else max(0.0, timeout - SPIN)
        ready = poller.poll(None if left is None else math.ceil(left * 1000))
    return ready
