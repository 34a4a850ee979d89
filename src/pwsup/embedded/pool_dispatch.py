"""What IsolatedPool's tasks do to its workers: which worker gets which task, and what a
worker's answer changes. The state, and the transitions, without the thread and the
descriptors around them (`pool_manager`): every method here runs under `lock`.

```
 pending ──▶ an idle worker (one task) │ no idle one, fewer than max_workers: start one
            │ else (or none could start) a busy worker with room: one task ahead (AHEAD)
 answer  ──▶ the task settles; the next one held ahead starts its deadline; the worker
             retires at its quota (max_tasks_per_worker) or over memory_limit
```
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pwsup.embedded import frames
from pwsup.embedded.pool_handle import decode_reply

if TYPE_CHECKING:
    from pwsup.embedded.pool_handle import Item, PoolWorker
    from pwsup.embedded.pool_worker import WorkerSetup

AHEAD = 1
"""Tasks a busy worker may hold beyond the one it runs, when tasks are waiting."""
RETIRE_WAIT = 1.0
"""How long a retired worker (its task pipe closed once it has answered everything) may
take to exit before it is stopped like a timed-out one. It exits at once, unless a
process the caller forked on its own holds a copy of the task pipe."""

@dataclass(frozen=True)
class Settings:
    max_workers: int
    grace: float
    max_tasks_per_worker: int | None
    memory_limit: int | None
    setup: WorkerSetup


class Dispatch:
    """The pool's state: the queue, the workers and what is in flight."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.pending: deque[Item] = deque()
        self.closing = False
        self.workers: dict[int, PoolWorker] = {}  # by reply fd
        self.settled: list[tuple[Item, frames.Result | frames.Undecodable]] = []
        """Answers to deliver once the lock is released (callbacks run user code)."""
        self.cannot_start: OSError | None = None
        """Why the last worker could not start (out of processes, of descriptors): no other
        is tried until something changes (a submit, a worker reaped), or the manager would
        retry in a loop; meanwhile the workers running take the queue."""

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

    def _take_replies(self, worker: PoolWorker) -> None:
        for message in frames.take_pool_replies(worker.inbox):
            result, usage, worker.rss_bytes = decode_reply(message)
            item = worker.tasks.popleft()
            item.usage = usage
            self.settled.append((item, result))
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

    def _dispatch(self) -> bool:
        """Hand queued tasks to idle workers, else ahead to busy ones once no more workers
        may start. True when a new worker is wanted (started by the caller of this,
        outside the lock)."""
        while self.pending:
            worker = self._idle_worker()
            if worker is None:
                if len(self.workers) < self.settings.max_workers and self.cannot_start is None:
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
            if len(worker.tasks) <= AHEAD and self._can_take(worker):
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


def _deadline(item: Item) -> float | None:
    return None if item.timeout is None else time.monotonic() + item.timeout
