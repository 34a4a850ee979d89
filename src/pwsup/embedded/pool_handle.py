"""The caller's side of one IsolatedPool worker: starting it, talking to it, ending it.

```
 manager thread                                     pool worker (`pool_worker`)
 two os.pipe()s; fork (forking.fork) ────────────▶ serve(): own group, cookie, signals
 pidfd_open(worker)
 task pipe  ───── task frame (pickled at submit) ──▶ fn(*args, **kwargs)
 reply pipe ◀──── answer frame ───────────────────── one write()
 close the task pipe: the worker exits (EOF)
 end_worker(): stop it if running, reap it, sweep its group and cookie holders
```

`spawn_worker` is the one place a pool worker is created, and `end_worker` the one place
one ends: whatever must be done for every worker (registering it, say) goes there.

Decisions, and why:

- **Forked by the manager thread, with every signal blocked there.** PR_SET_PDEATHSIG
  fires when the thread that forked exits, and the manager thread lives until every worker
  is reaped (and dies with the caller, even on SIGKILL): the workers go with it. Blocking
  signals in that thread keeps the caller's signals (Ctrl-C) for its main thread; the
  worker restores the mask of the thread that created the pool.
- **A worker's descendants end with it.** Unlike run_isolated, where what fn leaves
  running after its outcome is delivered is fn's own, a pool worker serves many tasks, so
  processes its tasks left belong to the worker: whenever a worker ends (recycled, crashed,
  timed out, at shutdown), its process group and every process carrying its cookie get
  SIGTERM, then SIGKILL after the grace period (`handle.WorkerHandle.stop`, as
  run_isolated stops its worker).
- **Ending a worker blocks** (up to the grace period, and its sweep of /proc), so it runs
  in a short-lived thread of its own: the manager carries on serving the other workers.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from pwsup.embedded import frames, keeper
from pwsup.embedded.handle import WorkerHandle
from pwsup.embedded.pool_worker import READ_CHUNK, serve
from pwsup.embedded.worker import flush_stdio
from pwsup.errors import (
    ExceptionNotPicklable,
    RemoteTraceback,
    ResultNotPicklable,
    ResultNotUnpicklable,
)
from pwsup.supervisor import forking, procs
from pwsup.util.usage import Usage

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pwsup.embedded.pool_worker import WorkerSetup


@dataclass(eq=False)
class Item:
    """One submitted task: its future, its pickled frame and its time limit."""

    future: Future[Any]
    frame: bytes
    timeout: float | None
    usage: Usage | None = None
    running: bool = False
    """Its future is RUNNING (set once: a task handed back by a worker that died before
    it could be sent is sent again)."""
    worker: PoolWorker | None = None
    """The worker it was sent to (None while queued)."""


@dataclass(eq=False)
class PoolWorker:
    """The manager's handle on one worker. Only the manager thread touches it, until it
    hands it to `end_worker`."""

    pid: int
    pidfd: int | None
    task_fd: int | None
    """The task pipe's write end; None once closed (the worker is retiring)."""
    reply_fd: int
    cookie: str
    inbox: bytearray = field(default_factory=bytearray)
    tasks: deque[Item] = field(default_factory=deque)
    """Sent and not answered yet, oldest (the running one) first."""
    served: int = 0
    """Tasks sent to it so far."""
    deadline: float | None = None
    """On the monotonic clock: when the running task's time is up, or (retiring) when the
    worker must have exited."""
    rss_bytes: int | None = None
    eof: bool = False
    """Its reply pipe is at EOF (and no longer polled)."""
    watched: bool = False
    """A thread waiting for a result watches its reply pipe (the manager does not)."""
    wakeup: int | None = None
    """An eventfd that thread also watches: the manager signals it when the worker ends
    while watched (and the watcher closes it); else the manager closes it then."""

    def send(self, items: list[Item]) -> None:
        """Hand it tasks, in one write (blocking: the worker reads as it goes)."""
        assert self.task_fd is not None
        data = memoryview(b"".join(item.frame for item in items))
        while data:
            data = data[os.write(self.task_fd, data):]
        self.tasks.extend(items)
        self.served += len(items)
        for item in items:
            item.worker = self

    def read(self) -> bool:
        """Move what the reply pipe holds into the inbox, without blocking; False at EOF.
        A short read means the pipe is empty for now (whoever polls it, level-triggered,
        hears of more): one system call less for each answer."""
        while True:
            try:
                chunk = os.read(self.reply_fd, READ_CHUNK)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            self.inbox += chunk
            if len(chunk) < READ_CHUNK:
                return True

    def retire(self) -> None:
        """Close the task pipe: the worker exits once it has answered what it has."""
        procs.close_quietly(self.task_fd)
        self.task_fd = None

    def fds(self) -> tuple[int, ...]:
        """Every descendant the caller forks must close these (see `spawn_worker`)."""
        fds = (self.pidfd, self.task_fd, self.reply_fd, self.wakeup)
        return tuple(fd for fd in fds if fd is not None)


def spawn_worker(setup: WorkerSetup, inherited: tuple[int, ...]) -> PoolWorker:
    """Start one pool worker: the one place a pool worker is created. `inherited` are the
    pool's other descriptors, which the worker closes at once: a worker holding another
    worker's task pipe would keep that worker from ever seeing EOF.

    `inherited` is a snapshot, and another thread may close one of them meanwhile (a
    worker ending, a retirement by a thread waiting for a result): a pipe created here
    may then reuse its number. So the worker never closes one of its own descriptors,
    whatever the snapshot says; and one closed before the fork is not inherited anyway.

    Raises OSError (ForkError for the fork) when the worker cannot be set up (out of
    processes, of descriptors); nothing created here is left open then."""
    opened: list[int] = []
    try:
        task_r, task_w = os.pipe()  # close-on-exec: programs fn runs do not get them
        opened += (task_r, task_w)
        reply_r, reply_w = os.pipe()
        opened += (reply_r, reply_w)
        wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        opened.append(wakeup)
        cookie = procs.new_cookie()
        flush_stdio()  # or the worker inherits unflushed output and writes it a second time
        with keeper.handing_off() as keeper_fd:
            own = {task_r, reply_w, keeper_fd}
            close = (task_w, reply_r, wakeup, *(fd for fd in inherited if fd not in own))
            pid = forking.fork(lambda _mask: serve(task_r, reply_w, cookie, setup, keeper_fd),
                               what="an IsolatedPool worker", death_signal=signal.SIGKILL,
                               close_fds=close)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    os.close(task_r)
    os.close(reply_w)  # from now on, EOF on reply_r means the worker is gone
    try:
        os.setpgid(pid, pid)  # the worker does the same: its own group, whichever runs first
    except OSError:
        pass
    os.set_blocking(reply_r, False)
    # No pidfd (unsupported, or out of descriptors): EOF on the reply pipe tells its exit.
    return PoolWorker(pid, procs.pidfd_open(pid), task_w, reply_r, cookie, wakeup=wakeup)


def end_worker(worker: PoolWorker, grace: float) -> tuple[int, bool]:
    """Stop `worker` if it still runs (SIGTERM to its group and cookie holders, `grace`,
    SIGKILL), reap it, and end what its tasks left running the same way; close its
    descriptors. Returns (wait status, whether SIGKILL was needed). Blocks: call it from
    a thread of its own."""
    worker.retire()
    handle = WorkerHandle(worker.pid, worker.reply_fd, worker.pidfd, worker.cookie)
    try:
        killed = handle.stop(grace)
    finally:
        handle.close()
        keeper.withdraw(worker.cookie)
    assert handle.wait_status is not None
    return handle.wait_status, killed


def decode_reply(message: object) -> tuple[frames.Result | frames.Undecodable,
                                          Usage | None, int | None]:
    """An answer frame's message: the Result (or what did not unpickle), its usage and
    the worker's resident set."""
    if isinstance(message, frames.Undecodable):
        return message, None, None
    status, payload, usage, rss_bytes = cast("tuple[str, Any, tuple[Any, ...], int | None]",
                                             message)
    return frames.Result(frames.Status(status), payload), Usage(*usage), rss_bytes


def settle(item: Item, message: frames.Result | frames.Undecodable) -> None:
    """Resolve a task's future from its Result, as run_isolated would return or raise."""
    future = item.future
    setattr(future, "usage", item.usage)  # noqa: B010 (a PoolFuture, or a plain Future)
    if isinstance(message, frames.Undecodable):
        error = ResultNotUnpicklable.of("a message from the worker",
                                        frames.describe(message.error))
        error.__cause__ = message.error
        future.set_exception(error)
    elif message.status is frames.Status.OK:
        future.set_result(message.payload)
    elif message.status is frames.Status.RAISED:
        exception, text = message.payload
        exception.__cause__ = RemoteTraceback(text)
        future.set_exception(exception)
    else:
        problem: frames.Problem = message.payload
        kind = ExceptionNotPicklable if problem.what == "exception" else ResultNotPicklable
        error = kind.of(problem.type_name, problem.reason)
        if problem.traceback:
            error.__cause__ = RemoteTraceback(problem.traceback)
        future.set_exception(error)
