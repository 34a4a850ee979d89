"""IsolatedPool: run_isolated's guarantees with warm workers, as a concurrent.futures Executor.

```python
from pwsup import IsolatedPool

with IsolatedPool(4, timeout=60, max_tasks_per_worker=100) as pool:
    totals = list(pool.map(crunch, days))
```

Where each part lives: this module is the public API and its settings; `pool_manager` is
the one thread in the caller that runs the pool (dispatch, results, deadlines, replacing
workers); `pool_staffing` starts and ends workers (and decides what a worker that cannot
start means for the queue); `pool_handle` is the caller's side of one worker (forking it,
its pipes, ending it); `pool_worker` is what runs in the worker; `frames` is what crosses the pipes.

What it keeps of run_isolated, and why each holds:

- **A crash fails only its own task**: each worker runs one task at a time, so a worker
  that dies (a signal, sys.exit, os._exit, a segfault, the OOM killer) takes exactly one
  task with it: that future gets WorkerCrashed (naming the signal and its likely cause),
  the others are untouched, and a new worker is forked when there is work for it.
- **A timeout stops the task's whole process tree**: the worker leads its own process
  group and marks its environment with a cookie; at the deadline (monotonic clock) the
  group and every process carrying the cookie get SIGTERM, then SIGKILL after `grace`;
  the future gets WorkerTimeout once the worker is reaped; a new worker takes its place.
- **No /dev/shm, no semaphores, no multiprocessing** (so it works on AWS Lambda): two
  pipes, a pidfd and poll() per worker, one wake-up pipe, a thread lock.
- **Nothing left behind**: `shutdown()` lets queued tasks run (unless `cancel_futures`),
  then every worker ends and is reaped, with what its tasks left running (its process
  group and cookie holders: SIGTERM, `grace`, SIGKILL). A pool never shut down is shut
  down the same way at interpreter exit (waiting for its tasks, as concurrent.futures'
  pools do); one garbage-collected without shutdown() finishes its tasks and ends its
  workers in the background. A process the caller forks later (os.fork, a run_isolated
  worker) does not own the pool: there, submit() raises and shutdown() does nothing.

What differs from run_isolated, and why:

- **fn and its arguments must pickle.** The workers exist before the task, so the call
  crosses a pipe; run_isolated forks per call and copies them. One that does not pickle
  fails only its own future, at once, with ArgumentsNotPicklable naming it. fn is found
  by name in the worker: a function defined in `__main__` after the workers were forked
  fails that task with the unpickling error.
- **The per-task timeout is a setting of the pool** (`timeout=`), or of one call with
  `submit_with(fn, args, kwargs, timeout=...)`, which takes fn's arguments as a tuple and
  a dict so no keyword name is reserved: submit() passes every keyword to fn.
- **No retries and no on_status**: a future is one attempt, and `update_status` in a
  task does nothing. Retry by submitting again.
- **Processes a task leaves running belong to its worker**, and end when it ends (a
  recycle, a crash, a timeout, shutdown), not only when the task fails.
- **Each future has `.usage`**, a `pwsup.util.usage.Usage` once the task answered (None
  for a crash or a timeout): CPU time of the worker and of the children it reaped during
  the task, wall time of the call, and the kernel's peak RSS, which for a warm worker is
  the high-water mark of its life so far, not of this task.

`memory_limit` (bytes) is a recycling threshold, not a cap: after each task the worker
reads its own resident set (/proc/self/statm; its children not counted) and, when it is
above the limit, the worker is retired once that task's result is delivered, and a fresh
one is forked for the next task. A task that allocates beyond it is not stopped (use
RLIMIT_AS, or a container limit, for a hard cap: the OOM killer's SIGKILL then fails
only that task). `max_tasks_per_worker` retires a worker after that many tasks the same
way.

As with any fork from a multi-threaded process (the pool's manager thread forks its
workers), a worker must not need a lock that another thread of the caller held at that
moment.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import os
import signal
import time
import weakref
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, TypeVar

from pwsup.embedded import frames
from pwsup.embedded.handle import MAX_WAIT, check_seconds
from pwsup.embedded.pool_dispatch import Settings
from pwsup.embedded.pool_handle import Item
from pwsup.embedded.pool_manager import Manager
from pwsup.embedded.pool_worker import WorkerSetup
from pwsup.errors import ArgumentsNotPicklable

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.util.usage import Usage

__all__ = ["IsolatedPool", "PoolFuture"]

_T = TypeVar("_T")


class _PoolDefault:
    def __repr__(self) -> str:
        return "POOL_DEFAULT"


POOL_DEFAULT: Any = _PoolDefault()
"""submit_with(timeout=POOL_DEFAULT): the pool's own timeout."""


class PoolFuture(Future[_T]):
    """A concurrent.futures Future with the cost of its task (`usage`).

    `result()` and `exception()` first wait on the worker's reply pipe themselves and
    take the answer there (see `pool_manager.Manager.wait_for`): a thread waiting for a
    result then wakes when the worker answers, not after the pool's thread was woken and
    scheduled first; and it polls for 50 µs before it sleeps, which is when a trivial
    task answers. Waiting through `concurrent.futures.wait` or `as_completed`, and
    everything else, is the stdlib's."""

    usage: Usage | None = None
    """CPU, wall time and peak RSS of the task (see the module docstring); None until it
    answered, and for a task that crashed or timed out."""
    _waiter: Callable[[float | None], None] | None = None

    def result(self, timeout: float | None = None) -> _T:
        return super().result(self._wait_first(timeout))

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return super().exception(self._wait_first(timeout))

    def _wait_first(self, timeout: float | None) -> float | None:
        """Wait on the reply pipe (see the class docstring); what is left of `timeout`
        for the stdlib's wait after it: one deadline for both, so that `timeout` bounds
        the whole call, not each of its two waits. A KeyboardInterrupt met while
        unpickling an answer there is raised now, the pool's state whole again (see
        `frames`): it may be the caller's Ctrl-C."""
        if self._waiter is None or self.done():
            return timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        self._waiter(None if timeout is None else min(timeout, MAX_WAIT))  # poll()'s limit
        frames.raise_deferred_interrupt()
        return None if deadline is None else max(0.0, deadline - time.monotonic())


_managers: weakref.WeakSet[Manager] = weakref.WeakSet()
"""The pools of this process, for interpreter exit (a running manager is kept alive by
its thread, so a garbage-collected pool's work is still waited for)."""


class IsolatedPool(Executor):
    """A pool of warm forked workers, each task isolated as run_isolated isolates a call
    (see the module docstring for what that guarantees).

    - `max_workers`: how many workers at most (default: the CPUs this process may use).
      They are forked when work needs them, and replaced the same way.
    - `timeout`: seconds each task may run (monotonic clock, from when a worker starts
      it); None: no limit. Then SIGTERM to its worker's process tree, SIGKILL after
      `grace` seconds, and WorkerTimeout. Both are at most 10 years (`handle.MAX_SECONDS`,
      the command line's bound); NaN or infinity is a ValueError.
    - `max_tasks_per_worker`: a worker is replaced after that many tasks.
    - `memory_limit`: bytes of resident memory after which a worker is replaced (checked
      after each task; see the module docstring for exactly what it means).
    - `initializer(*initargs)` runs once in each worker before its first task; if it
      raises, every task that worker gets fails with that exception.
    """

    def __init__(self, max_workers: int | None = None, *, timeout: float | None = None,
                 grace: float = 5.0, max_tasks_per_worker: int | None = None,
                 memory_limit: int | None = None,
                 initializer: Callable[..., object] | None = None,
                 initargs: tuple[Any, ...] = ()) -> None:
        workers = _default_workers() if max_workers is None else max_workers
        _check_settings(workers, timeout, grace, max_tasks_per_worker, memory_limit,
                        initializer)
        importlib.import_module("ctypes")  # for PR_SET_PDEATHSIG: once here, not per fork
        mask = frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, ()))
        setup = WorkerSetup(mask, initializer, tuple(initargs), memory_limit is not None, grace)
        self._timeout = timeout
        self._manager = Manager(Settings(workers, grace, max_tasks_per_worker, memory_limit,
                                         setup))
        _managers.add(self._manager)
        weakref.finalize(self, self._manager.close, False, False).atexit = False

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> PoolFuture[_T]:
        """Schedule `fn(*args, **kwargs)` in a worker, with the pool's timeout; every
        keyword argument goes to fn."""
        return self._submit(fn, args, kwargs, self._timeout)

    def submit_with(self, fn: Callable[..., _T], /, args: tuple[Any, ...] = (),
                    kwargs: dict[str, Any] | None = None, *,
                    timeout: float | None = POOL_DEFAULT) -> PoolFuture[_T]:
        """Schedule `fn(*args, **kwargs)` with a time limit of its own (None: none)."""
        if timeout is POOL_DEFAULT:
            timeout = self._timeout
        elif timeout is not None:
            check_seconds("timeout", timeout, positive=True, none_allowed=True)
        return self._submit(fn, tuple(args), dict(kwargs or {}), timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more tasks. Queued ones still run unless `cancel_futures`; then every
        worker ends, with what its tasks left running. With `wait`, return once all of
        them are reaped."""
        self._manager.close(wait, cancel_futures)

    def _submit(self, fn: Callable[..., _T], args: tuple[Any, ...], kwargs: dict[str, Any],
                timeout: float | None) -> PoolFuture[_T]:
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, not {type(fn).__name__}")
        if os.getpid() != self._manager.owner:
            raise RuntimeError("this IsolatedPool belongs to the process that created it "
                               f"(pid {self._manager.owner}), not to this forked copy")
        future: PoolFuture[_T] = PoolFuture()
        try:
            frame = frames.encode_task(fn, args, kwargs)
        except Exception as error:
            if self._manager.closing:
                raise RuntimeError("cannot schedule new futures after shutdown") from None
            future.set_exception(_not_picklable(fn, args, kwargs, error))
            return future
        item = Item(future, frame, timeout)
        future._waiter = functools.partial(self._manager.wait_for, item)
        self._manager.put(item)
        return future


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _check_settings(workers: int, timeout: float | None, grace: float,
                    max_tasks: int | None, memory_limit: int | None,
                    initializer: object) -> None:
    """Reject bad settings here, before any thread or process starts; durations as
    run_isolated does (at most `handle.MAX_SECONDS`, finite)."""
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"max_workers must be a whole number >= 1, not {workers!r}")
    if timeout is not None:
        check_seconds("timeout", timeout, positive=True, none_allowed=True)
    check_seconds("grace", grace)
    if max_tasks is not None and (not isinstance(max_tasks, int) or max_tasks < 1):
        raise ValueError(f"max_tasks_per_worker must be a whole number >= 1 or None, "
                         f"not {max_tasks!r}")
    if memory_limit is not None and (not isinstance(memory_limit, int) or memory_limit < 1):
        raise ValueError(f"memory_limit must be a number of bytes >= 1 or None, "
                         f"not {memory_limit!r}")
    if initializer is not None and not callable(initializer):
        raise TypeError(f"initializer must be callable, not {type(initializer).__name__}")


def _not_picklable(fn: object, args: tuple[Any, ...], kwargs: dict[str, Any],
                   error: Exception) -> ArgumentsNotPicklable:
    """Name what did not pickle: fn, an argument by position, or one by keyword."""
    parts: list[tuple[str, object]] = [("fn", fn)]
    parts += [(f"argument {i}", arg) for i, arg in enumerate(args)]
    parts += [(f"keyword argument {name!r}", value) for name, value in kwargs.items()]
    where, culprit = "the task", None
    for name, value in parts:
        try:
            frames.dumps(value)
        except Exception as e:
            where, culprit, error = name, value, e
            break
    type_name = frames.type_name(culprit) if where != "the task" else "the task"
    reason = frames.describe(error)
    exception = ArgumentsNotPicklable(
        f"{where} ({type_name}) could not be pickled to send it to a pool worker: {reason}. "
        "IsolatedPool's workers exist before the task: use a function defined at module "
        "level and arguments that pickle, or run_isolated(), which copies them by forking.",
        type_name=type_name, reason=reason)
    exception.__cause__ = error
    return exception


@atexit.register
def _close_all() -> None:
    """Interpreter exit: every pool still open finishes its tasks and ends its workers."""
    for manager in list(_managers):
        manager.close(True, False)


def _forget_all() -> None:
    """In a forked child: the pools are the parent's (their workers, their threads)."""
    _managers.clear()


os.register_at_fork(after_in_child=_forget_all)
