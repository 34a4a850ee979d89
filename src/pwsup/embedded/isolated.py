"""run_isolated(fn): call a function in a forked worker process and bring back its outcome.

Why a process: fn may crash in native code, leak memory, hang inside a C call or be chosen
by the out-of-memory killer. The caller survives all of that and gets an exception that
says which of them happened. One worker per attempt:

```
 caller: run_isolated(fn, ...)                     worker: the os.fork() child
 ─────────────────────────────                     ───────────────────────────
 os.pipe(); block handled signals; os.fork() ───▶ reset signal handlers, PR_SET_PDEATHSIG,
 pidfd_open(worker); unblock them                  faulthandler; then unblock them
 close the pipe's write end                        value = fn(*args, **kwargs)
 poll(pipe, pidfd) until the monotonic deadline      │
   ◀── _StatusUpdate(fields) ──── pipe ────────────  ├─ update_status(**fields), any number
   ◀── _Result(OK | RAISED | ERROR, payload) ──────  └─ the outcome, pickled, exactly once
 pidfd readable: waitpid() reaps it                os._exit() in a finally, always
 deadline passed: SIGTERM, grace period, SIGKILL, reap
```

Frames on the pipe are an 8-byte big-endian length, then a pickle. Only the caller ever
waits for or signals the worker's pid, and only until it has reaped it (after that the pid
may be someone else's). A caller that dies, even by SIGKILL, takes its worker along:
PR_SET_PDEATHSIG fires when the thread that forked exits, and that thread waits inside
run_isolated until the worker is reaped.

Decisions, and why:

- **Plain `os.fork()`**, an explicit start method whatever multiprocessing's default is.
  `multiprocessing.get_context("fork").Process` would add nothing we need (a sentinel pipe
  and `os._exit` in a `finally` are a few lines) and bring what we do not want: it refuses
  to start from a daemonic process (a pool worker), runs multiprocessing's exit machinery
  in the worker, reaps on its own schedule, and costs an import of multiprocessing.
- **No semaphores, locks or multiprocessing queues**: they need /dev/shm, which AWS Lambda
  lacks. One `os.pipe()` carries everything; nothing here imports multiprocessing.
- **Arguments are not pickled**: the fork copies them, so any argument works (lambdas,
  locks, open files, sockets) and there is no "unpicklable arguments" error. Only the
  outcome crosses the pipe, and when it cannot, a TransferError names the type.
- **Reserved keyword names**: `timeout`, `retries`, `retry_delay`, `grace` and `on_status`
  belong to run_isolated; every other keyword argument goes to fn. To pass fn a keyword
  with a reserved name, bind it first: `run_isolated(functools.partial(fn, timeout=3))`.
  `fn` is positional-only, so fn itself may take a keyword called `fn`.
- **Waiting is on events**: poll() on the pipe and the worker's pidfd (readable once it
  has exited, whoever holds copies of the pipe). Where pidfd_open is unavailable (kernels
  before 5.3, some seccomp profiles) pipe EOF is the sentinel, backed by a waitpid(WNOHANG)
  check every `_NO_PIDFD_TICK` seconds, since a process fn forked may hold the pipe open.
- **sys.exit() in fn ends the worker**, like in any process: the caller gets WorkerCrashed
  with that exit code. Re-raising SystemExit in the caller would end the caller's program,
  which is what isolation is for.
- **Ctrl-C in the caller stops the worker the way a timeout does** (SIGTERM, up to `grace`
  seconds, SIGKILL), then KeyboardInterrupt propagates. A second Ctrl-C during the grace
  period skips to SIGKILL. The worker has no SIGTERM handler unless fn installs one, so
  the common case ends at once, and an fn that must clean up gets the same chance as on a
  timeout.
- **Retries** follow fn's exceptions, crashes and timeouts, which may pass on a second
  try; never a TransferError (it would fail the same way) nor the caller's own Ctrl-C.
  `timeout` applies to each attempt.
"""

from __future__ import annotations

import faulthandler
import importlib
import math
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pwsup.errors import (
    STATUS_LOST,
    ExceptionNotPicklable,
    RemoteTraceback,
    ResultNotPicklable,
    ResultNotUnpicklable,
    TransferError,
    WorkerCrashed,
    WorkerTimeout,
)
from pwsup.supervisor import forking
from pwsup.supervisor.procs import pidfd_open

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["run_isolated", "update_status"]

_T = TypeVar("_T")

_SIGNALS = tuple(signal.valid_signals())
"""Fixed for the platform, and worth computing once: valid_signals() converts each number
to an enum member, which costs about 0.1 ms a call."""
_HEADER = struct.Struct("!Q")
_READ_CHUNK = 1 << 16
"""The default capacity of a pipe: larger reads only cost bigger allocations."""
_NO_PIDFD_TICK = 0.05
"""Without a pidfd, how often a waiting caller also asks waitpid whether the worker exited
(its pipe's EOF may be held back by a process fn forked)."""
_AFTER_RESULT = 1.0
"""At least this long, the caller waits for a worker that has sent its outcome to exit
(it has nothing left to do but os._exit) before stopping it."""
_EXIT_INTERNAL = 70
"""The worker's exit code when its own machinery failed (EX_SOFTWARE; details on its
stderr), or when the caller was already gone as it started."""


# -- messages -------------------------------------------------------------------------------


class _Status(Enum):
    OK = "ok"  # fn returned: the payload is its value
    RAISED = "raised"  # fn raised: the payload is (exception, formatted traceback)
    ERROR = "error"  # the outcome could not be sent: the payload is a _Problem


@dataclass(frozen=True)
class _Result:
    """The worker's outcome, sent exactly once, last."""

    status: _Status
    payload: Any


@dataclass(frozen=True)
class _Problem:
    """Why an outcome could not be pickled. Plain strings only, so it always pickles."""

    what: str  # "result" or "exception"
    type_name: str
    reason: str
    traceback: str  # fn's traceback when an exception could not be sent, else ""


@dataclass(frozen=True)
class _StatusUpdate:
    """Fields from update_status(), delivered to on_status in the order sent."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class _Failure:
    """A failed attempt, as a value, so the retry loop can decide before raising."""

    error: BaseException
    cause: BaseException | None
    retryable: bool


@dataclass(frozen=True)
class _Call:
    """What the worker calls. Never pickled: the fork copies it."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class _Settings:
    """How each attempt is run and watched."""

    timeout: float | None
    grace: float
    on_status: Callable[[dict[str, Any]], None] | None


# -- the public API -------------------------------------------------------------------------


def run_isolated(fn: Callable[..., _T], /, *args: Any, timeout: float | None = None,
                 retries: int = 0, retry_delay: float = 0, grace: float = 5.0,
                 on_status: Callable[[dict[str, Any]], None] | None = None,
                 **kwargs: Any) -> _T:
    """Call `fn(*args, **kwargs)` in a forked worker process and return its value.

    - fn raises: the same exception is raised here, its `__cause__` a RemoteTraceback
      holding the worker's traceback text.
    - The worker dies first (a signal, sys.exit, os._exit, a segfault, the OOM killer):
      WorkerCrashed, with `.exitcode`, `.signal`, `.pid` and the likely cause.
    - `timeout` seconds pass (per attempt, on the monotonic clock): the worker gets SIGTERM,
      then SIGKILL after `grace` seconds; then WorkerTimeout (a TimeoutError).
    - The value or exception cannot be pickled back: ResultNotPicklable or
      ExceptionNotPicklable, naming the type. These are never retried.
    - fn's exceptions, crashes and timeouts are retried up to `retries` times, `retry_delay`
      seconds apart (a Ctrl-C interrupts the delay); the last failure is raised.
    - `on_status` is called here, in the caller's thread, with the fields of each
      update_status() call fn makes, in order, before run_isolated returns. If it raises,
      the worker is stopped and the exception propagates.
    - Ctrl-C while waiting stops the worker (SIGTERM, then SIGKILL after `grace`, or at
      once on a second Ctrl-C), then KeyboardInterrupt propagates.

    The keyword names above are reserved (see the module docstring); all other keyword
    arguments go to fn. The worker is gone, reaped, and its pipe closed when this returns
    or raises; processes that fn itself started are fn's to manage. As with any fork: do
    not call it while another thread holds a lock that fn needs (Python 3.12+ warns about
    forking a multi-threaded process).
    """
    _check_arguments(fn, timeout, retries, retry_delay, grace)
    call = _Call(fn, args, kwargs)
    settings = _Settings(timeout, grace, on_status)
    attempts_left = retries
    while True:
        outcome = _attempt(call, settings)
        if isinstance(outcome, _Result) and outcome.status is _Status.OK:
            return cast("_T", outcome.payload)
        failure = _failure_of(outcome)
        if not failure.retryable or attempts_left == 0:
            raise failure.error from failure.cause
        attempts_left -= 1
        if retry_delay:
            time.sleep(retry_delay)  # a Ctrl-C raises KeyboardInterrupt out of the sleep


def update_status(**fields: Any) -> bool:
    """Send `fields` to the caller's `on_status`, from inside a run_isolated worker.

    Returns True when sent, False (doing nothing) outside a worker, so library code may
    call it unconditionally. The values must pickle. Safe to call from fn's threads. It
    blocks only while the pipe is full, which lasts as long as the caller's on_status.
    """
    sender = _sender
    if sender is None or sender.pid != os.getpid():  # not a worker, or a process fn forked
        return False
    sender.send(_dumps(_StatusUpdate(fields)))
    return True


def _check_arguments(fn: object, timeout: float | None, retries: int, retry_delay: float,
                     grace: float) -> None:
    """Reject bad settings here, in the caller, before anything is forked."""
    if not callable(fn):
        raise TypeError(f"run_isolated() needs a callable, not {type(fn).__name__}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0, not {retries!r}")
    if not retry_delay >= 0:
        raise ValueError(f"retry_delay must be >= 0 seconds, not {retry_delay!r}")
    if not grace >= 0:
        raise ValueError(f"grace must be >= 0 seconds, not {grace!r}")


# -- the caller's side ----------------------------------------------------------------------


def _attempt(call: _Call, settings: _Settings) -> _Result | _Failure:
    """One worker, from fork to reap; its outcome, a crash or a timeout."""
    deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
    with _spawned(call, settings.grace) as worker:
        try:
            outcome = _await_outcome(worker, deadline, settings)
        except TransferError as error:
            return _Failure(error, None, retryable=False)
        if isinstance(outcome, _Result):  # it leaves right after sending: reap it
            worker.wait_exit(max(settings.grace, _AFTER_RESULT))
        return outcome


@contextmanager
def _spawned(call: _Call, grace: float) -> Iterator[_Worker]:
    """A running worker; on the way out, however that happens, it is stopped (if still
    running), reaped, and its file descriptors closed.

    Signals stay blocked from before the fork until the worker has its handle, so an
    interrupt cannot separate a running worker from the only record of its pid: a
    KeyboardInterrupt comes out of the `with` below, when `worker` is already set."""
    worker: _Worker | None = None
    try:
        with _signals_blocked() as mask:
            worker = _fork(call, mask)
        yield worker
    finally:
        if worker is not None:
            try:
                worker.stop(grace)
            finally:
                worker.close()


@contextmanager
def _signals_blocked() -> Iterator[set[int]]:
    """Block, in this thread, the signals that have Python handlers (the only ones whose
    delivery in the worker, before it resets them, would run the caller's code); yield the
    mask to restore, which the worker restores too once it is ready for signals."""
    handled = [signum for signum in _SIGNALS if callable(signal.getsignal(signum))]
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        yield mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _await_outcome(worker: _Worker, deadline: float | None,
                   settings: _Settings) -> _Result | _Failure:
    """Deliver status updates until the outcome arrives, the worker dies without one, or
    the deadline passes (then the worker is stopped here)."""
    while True:
        for message in worker.messages():
            if isinstance(message, _Result):
                return message
            if settings.on_status is not None:
                settings.on_status(message.fields)
        if worker.wait_status is not None:
            crashed = WorkerCrashed.from_wait_status(worker.pid, worker.wait_status)
            return _Failure(crashed, None, retryable=True)
        remaining = _remaining(deadline)
        if remaining == 0:
            return _timed_out(worker, settings)
        worker.wait_for_event(remaining)


def _timed_out(worker: _Worker, settings: _Settings) -> _Failure:
    killed = worker.stop(settings.grace)
    timeout = cast("float", settings.timeout)
    error = WorkerTimeout.after(timeout, pid=worker.pid, grace=settings.grace, killed=killed)
    return _Failure(error, None, retryable=True)


def _failure_of(outcome: _Result | _Failure) -> _Failure:
    """What to raise for an outcome other than OK, and whether a retry may help."""
    if isinstance(outcome, _Failure):
        return outcome
    if outcome.status is _Status.RAISED:
        exception, text = outcome.payload
        return _Failure(exception, RemoteTraceback(text), retryable=True)
    problem: _Problem = outcome.payload
    cause = RemoteTraceback(problem.traceback) if problem.traceback else None
    error_type = ExceptionNotPicklable if problem.what == "exception" else ResultNotPicklable
    return _Failure(error_type.of(problem.type_name, problem.reason), cause, retryable=False)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _fork(call: _Call, mask: Iterable[int]) -> _Worker:
    """Start a worker; the caller keeps only the pipe's read end and a pidfd. Call with
    signals blocked: the worker must not run the caller's Python signal handlers (a
    KeyboardInterrupt there would unwind into the caller's code) before it resets them."""
    read_fd, write_fd = os.pipe()  # both close-on-exec: programs fn runs do not get them
    try:
        pid = _fork_worker(call, read_fd, write_fd, mask)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # from now on, EOF on read_fd means every writer is gone
    return _Worker(pid, read_fd, pidfd_open(pid))


def _fork_worker(call: _Call, read_fd: int, write_fd: int, mask: Iterable[int]) -> int:
    """Fork the worker (`forking.fork`: it leaves through os._exit whatever happens, and
    gets SIGKILL if the caller dies). Its return value is the worker's exit code."""
    _preload()
    _flush_stdio()  # or the worker inherits unflushed output and writes it a second time
    return forking.fork(lambda _mask: _worker_main(call, write_fd, mask),
                        what="the run_isolated worker", death_signal=signal.SIGKILL,
                        close_fds=(read_fd,))


def _preload() -> None:
    """Import ctypes in the caller, once: PR_SET_PDEATHSIG goes through it, and importing
    it afresh in every worker would add milliseconds to each call."""
    importlib.import_module("ctypes")


class _Worker:
    """The caller's handle on one worker: its pid (ours to signal only until reaped), the
    pipe's read end, and its pidfd when the kernel has them."""

    def __init__(self, pid: int, read_fd: int, pidfd: int | None) -> None:
        self.pid = pid
        self.read_fd = read_fd
        self.pidfd = pidfd
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
            timeout = _NO_PIDFD_TICK if timeout is None else min(timeout, _NO_PIDFD_TICK)
        milliseconds = None if timeout is None else math.ceil(timeout * 1000)
        ready = {fd for fd, _ in self._poller.poll(milliseconds)}
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

    def messages(self) -> Iterator[_Result | _StatusUpdate]:
        """The complete messages in the inbox, in order, each removed as it is yielded."""
        while len(self._inbox) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._inbox)
            end = _HEADER.size + length
            if len(self._inbox) < end:
                return
            with memoryview(self._inbox) as view, view[_HEADER.size:end] as payload:
                message = _loads(payload)
            del self._inbox[:end]
            if isinstance(message, (_Result, _StatusUpdate)):
                yield message

    def poll_exit(self) -> bool:
        """Reap the worker if it has exited (then drain the pipe); True once reaped."""
        if self.wait_status is None:
            self.wait_status = _waitpid(self.pid, os.WNOHANG)
            if self.wait_status is None:
                return False
            self.read_available()  # what it sent just before exiting
        return True

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the worker to exit; True once reaped."""
        deadline = time.monotonic() + timeout
        while not self.poll_exit():
            remaining = _remaining(deadline)
            if remaining == 0:
                return False
            self.wait_for_event(remaining)
        return True

    def stop(self, grace: float) -> bool:
        """SIGTERM, up to `grace` seconds to exit, then SIGKILL; reaped on return, however
        it returns. An interrupt (a second Ctrl-C) in the grace period skips to SIGKILL.
        True if SIGKILL was needed."""
        if self.poll_exit():
            return False
        os.kill(self.pid, signal.SIGTERM)  # not reaped yet, so the pid is still ours
        try:
            exited = self.wait_exit(grace)
        finally:
            if self.wait_status is None:
                self._kill_and_reap()
        return not exited

    def _kill_and_reap(self) -> None:
        """SIGKILL and a blocking waitpid, which SIGKILL bounds. An interrupt while waiting
        is held back until the worker is reaped: a zombie would outlive the call."""
        os.kill(self.pid, signal.SIGKILL)
        interrupted: KeyboardInterrupt | None = None
        while self.wait_status is None:
            try:
                self.wait_status = _waitpid(self.pid, 0)
            except KeyboardInterrupt as e:
                interrupted = e
        if interrupted is not None:
            raise interrupted

    def close(self) -> None:
        os.close(self.read_fd)
        if self.pidfd is not None:
            os.close(self.pidfd)


def _waitpid(pid: int, options: int) -> int | None:
    """The wait status once `pid` has exited, else None; STATUS_LOST when something else
    reaped it first (SIGCHLD set to SIG_IGN, or a waitpid(-1) loop in this process).
    ECHILD means exited either way, so the pid is no longer ours to signal."""
    try:
        reaped, status = os.waitpid(pid, options)
    except ChildProcessError:
        return STATUS_LOST
    return status if reaped else None


def _loads(payload: memoryview) -> object:
    try:
        return pickle.loads(payload)
    except Exception as error:
        raise ResultNotUnpicklable.of("a message from the worker", _describe(error)) from error


# -- the worker's side ----------------------------------------------------------------------


class _Sender:
    """The worker's end of the pipe. The lock keeps frames whole when fn's threads call
    update_status while the main thread sends the outcome."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def send(self, payload: bytes) -> None:
        with self.lock:
            _write_all(self.fd, _HEADER.pack(len(payload)))
            _write_all(self.fd, payload)


_sender: _Sender | None = None
"""Set in a worker only: update_status() sends through it."""


def _worker_main(call: _Call, write_fd: int, mask: Iterable[int]) -> int:
    """The worker's whole life; returns its exit code, for os._exit (never a return into
    the caller's code, the fork returned into it; never the caller's atexit hooks)."""
    global _sender
    try:
        _prepare_worker(mask)
        _sender = _Sender(write_fd)
        result = _call(call)
        payload = _encode(result)
        _flush_stdio()  # fn's output comes out before the caller gets its value
        _sender.send(payload)
        return 0
    except SystemExit as exit_:  # fn (or a pickling hook) called sys.exit(): exit so
        return _exit_code(exit_)
    except BaseException:
        traceback.print_exc()
        return _EXIT_INTERNAL
    finally:
        _flush_stdio()


def _prepare_worker(mask: Iterable[int]) -> None:
    """Signals first (they are still blocked from the fork), then faulthandler; then
    unblock. (The parent-death signal is armed by `forking.fork`.)"""
    _reset_signals()
    _enable_faulthandler()
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _reset_signals() -> None:
    """The caller's Python handlers belong to the caller's program: in the worker each one
    goes back to the default. SIGINT is ignored, so a Ctrl-C at the terminal (sent to the
    whole process group) reaches only the caller, which then stops the worker itself.
    SIGTERM and SIGCHLD are set to the default even if the caller ignored them: the caller
    stops the worker with SIGTERM, and fn's subprocesses need their exit statuses.
    Other ignored signals stay ignored (SIGPIPE, as in every Python process)."""
    for signum in _SIGNALS:  # all of them again: the caller may have set one meanwhile
        if callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)  # the caller's (asyncio's, say) must not hear the worker's


def _enable_faulthandler() -> None:
    """A segfault in fn then leaves fn's Python stack on the worker's stderr. When
    sys.stderr has no file descriptor (replaced by a test harness), use fd 2. Enabled
    again even if the caller had it on: the worker's report goes to the worker's stderr,
    which is what WorkerCrashed's message points to."""
    try:
        faulthandler.enable()
    except (AttributeError, ValueError, OSError, RuntimeError):
        faulthandler.enable(file=2)


def _call(call: _Call) -> _Result:
    try:
        return _Result(_Status.OK, call.fn(*call.args, **call.kwargs))
    except SystemExit:
        raise  # not an outcome: the worker exits with that code (see _worker_main)
    except BaseException as exception:
        return _Result(_Status.RAISED, (exception, _format_traceback(exception)))


def _encode(result: _Result) -> bytes:
    """The outcome as bytes; an ERROR naming the type when it does not pickle. An exception
    is also unpickled once here: one that cannot be rebuilt (an `__init__` with required
    arguments it does not pass on) is then reported here, with fn's traceback, rather than
    failing in the caller with neither."""
    try:
        payload = _dumps(result)
        if result.status is _Status.RAISED:
            pickle.loads(payload)
    except Exception as error:
        return _dumps(_Result(_Status.ERROR, _problem(result, error)))
    return payload


def _problem(result: _Result, error: Exception) -> _Problem:
    if result.status is _Status.RAISED:
        exception, text = result.payload
        return _Problem("exception", _type_name(exception), _describe(error), text)
    return _Problem("result", _type_name(result.payload), _describe(error), "")


def _format_traceback(exception: BaseException) -> str:
    """fn's traceback, without the frame of `_call` (unless that is all there is, as for
    a TypeError from calling fn with the wrong arguments)."""
    tb = exception.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exception), exception, tb))


def _exit_code(exit_: SystemExit) -> int:
    """The exit status Python itself would give for this SystemExit."""
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code & 0xFF
    print(exit_.code, file=sys.stderr)
    return 1


# -- small helpers ----------------------------------------------------------------------------


def _dumps(message: object) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed, or its reader is gone: nothing to save
            pass


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # a __str__ that fails: the type is still worth saying
        return type(error).__name__
