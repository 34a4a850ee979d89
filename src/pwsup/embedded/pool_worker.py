"""An IsolatedPool worker: what runs in the forked child, from the fork to `os._exit`.

```
 own process group, the worker's cookie; signals reset, faulthandler   (as run_isolated's)
 initializer(*initargs), once
 loop: read a task frame from the task pipe ─── EOF: exit 0 (the pool retired it)
       value = fn(*args, **kwargs), measured (getrusage, monotonic clock)
       one write() to the reply pipe: the answer's frame
```

It is run_isolated's worker (`worker`) made to serve many calls: the same signal set-up,
the same process group and cookie (fn's children join the group; programs they run carry
the cookie), the same `Result` for each outcome, and the same way out: `os._exit`, through
`forking.fork`, so neither the caller's atexit hooks nor fn's run.

Decisions, and why:

- **An initializer that raises does not kill the worker.** It would be replaced, fail
  again, and so on. Instead the worker stays, and answers every task with the
  initializer's exception (and its traceback as the cause): each future says what is wrong.
- **A task that does not unpickle here** (a function defined in `__main__` after this
  worker was forked) fails that task with the unpickling error, like an exception fn
  raised; the worker serves on.
- **sys.exit() in fn ends the worker**, as in run_isolated: that task's future gets
  WorkerCrashed with the exit code, and the pool replaces the worker.
- **`update_status` is a no-op in a pool task**: there is no `on_status` to deliver to.
"""

from __future__ import annotations

import os
import resource
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pwsup.embedded import frames, keeper
from pwsup.embedded.worker import (
    EXIT_INTERNAL,
    Call,
    _call,
    _exit_code,
    _own_group_and_cookie,
    _prepare_worker,
    flush_stdio,
)

if TYPE_CHECKING:
    from collections.abc import Callable

READ_CHUNK = 1 << 16
"""The default capacity of a pipe: larger reads only cost bigger allocations."""
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker of one pool is started with (copied by the fork, never pickled)."""

    mask: frozenset[int]
    """The signal mask of the thread that created the pool: the worker's own mask once it
    is ready (the manager thread that forks it blocks every signal)."""
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    measure_rss: bool
    """Read the worker's resident set after each task (the pool has a memory limit)."""
    grace: float
    """The pool's grace period: what the keeper gives the worker's processes should the
    caller be killed outright."""


def serve(task_fd: int, reply_fd: int, cookie: str, setup: WorkerSetup,
          keeper_fd: int | None) -> int:
    """The worker's whole life; returns its exit code, for os._exit. Before any task, it
    registers its group and cookie with the caller's keeper (see `keeper`)."""
    try:
        _own_group_and_cookie(cookie)
        keeper.register(keeper_fd, cookie, os.getpid(), setup.grace)
        _prepare_worker(setup.mask)
        failed = _initialize(setup)
        inbox = bytearray()
        while True:
            chunk = os.read(task_fd, READ_CHUNK)
            if not chunk:
                return 0  # the pool closed the task pipe: retired
            inbox += chunk
            for message in frames.take_pool_messages(inbox):
                _write_all(reply_fd, _answer(message, failed, setup.measure_rss))
    except SystemExit as exit_:  # fn (or a pickling hook) called sys.exit(): exit so
        return _exit_code(exit_)
    except BaseException:
        traceback.print_exc()
        return EXIT_INTERNAL
    finally:
        flush_stdio()


def _initialize(setup: WorkerSetup) -> frames.Result | None:
    """Run the initializer; its failure as the answer to every task, else None."""
    if setup.initializer is None:
        return None
    failed = _call(Call(setup.initializer, setup.initargs, {}))
    return failed if failed.status is frames.Status.RAISED else None


def _answer(message: object, failed: frames.Result | None, measure_rss: bool) -> bytes:
    """The reply to one task, as one frame."""
    started = time.monotonic()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if failed is not None:
        result = failed
    elif isinstance(message, frames.Undecodable):
        error = message.error
        result = frames.Result(frames.Status.RAISED, (error, "".join(
            traceback.format_exception(type(error), error, error.__traceback__))))
    else:
        fn, args, kwargs = cast("tuple[Any, tuple[Any, ...], dict[str, Any]]", message)
        result = _call(Call(fn, args, kwargs))
    usage = _usage_since(started, self_before, children_before)
    flush_stdio()  # fn's output comes out before the caller gets its value
    return frames.encode_reply(result, usage, _rss_bytes() if measure_rss else None)


def _usage_since(started: float, self_before: resource.struct_rusage,
                 children_before: resource.struct_rusage) -> tuple[float, float, int, float]:
    """`Usage`'s fields: CPU time of the worker and of the children it reaped during the
    task; peak RSS as the kernel keeps it: the high-water mark of the worker's life so far
    (it never goes down), or of the largest child reaped so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = (me.ru_utime - self_before.ru_utime) + (children.ru_utime - children_before.ru_utime)
    system = (me.ru_stime - self_before.ru_stime) + (children.ru_stime - children_before.ru_stime)
    peak = max(me.ru_maxrss, children.ru_maxrss) * 1024
    return (user, system, peak, time.monotonic() - started)


def _rss_bytes() -> int:
    """The worker's resident set now (pages in /proc/self/statm, second field)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
