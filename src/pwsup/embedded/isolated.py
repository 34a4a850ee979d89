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
   ◀── StatusUpdate(fields) ───── pipe ────────────  ├─ update_status(**fields), any number
   ◀── Result(OK | RAISED | ERROR, payload) ───────  └─ the outcome, pickled, exactly once
 pidfd readable: wait4() reaps it                  os._exit() in a finally, always
 deadline passed: SIGTERM, grace period, SIGKILL, reap
```

Where each part lives: this module is the public API, the settings and the attempts
(retries, the deadline, what to raise); `handle` is the caller's handle on one worker
(forking it, waiting on its pipe and pidfd, stopping and reaping it, and why a plain fork,
no semaphores and pidfds); `worker` is what runs after the fork; `frames` is what crosses
the pipe and how it is framed.

Decisions about the API, and why:

- **Arguments are not pickled**: the fork copies them, so any argument works (lambdas,
  locks, open files, sockets) and there is no "unpicklable arguments" error. Only the
  outcome crosses the pipe, and when it cannot, a TransferError names the type.
- **Reserved keyword names**: `timeout`, `retries`, `retry_delay`, `grace`, `on_status`
  and `on_usage` belong to run_isolated; every other keyword argument goes to fn. To pass
  fn a keyword with a reserved name, bind it first:
  `run_isolated(functools.partial(fn, timeout=3))`. `fn` is positional-only, so fn
  itself may take a keyword called `fn`.
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

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pwsup.embedded.frames import Problem, Result, Status
from pwsup.embedded.handle import WorkerHandle, check_seconds, remaining, spawned
from pwsup.embedded.worker import Call, send_status
from pwsup.errors import (
    ExceptionNotPicklable,
    RemoteTraceback,
    ResultNotPicklable,
    TransferError,
    WorkerCrashed,
    WorkerTimeout,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.util.usage import Usage

__all__ = ["run_isolated", "update_status"]

_T = TypeVar("_T")

_AFTER_RESULT = 1.0
"""At least this long, the caller waits for a worker that has sent its outcome to exit
(it has nothing left to do but os._exit) before stopping it."""


@dataclass(frozen=True)
class _Failure:
    """A failed attempt, as a value, so the retry loop can decide before raising."""

    error: BaseException
    cause: BaseException | None
    retryable: bool


@dataclass(frozen=True)
class _Settings:
    """How each attempt is run and watched."""

    timeout: float | None
    grace: float
    on_status: Callable[[dict[str, Any]], None] | None
    on_usage: Callable[[Usage], None] | None = None


# -- the public API -------------------------------------------------------------------------


def run_isolated(fn: Callable[..., _T], /, *args: Any, timeout: float | None = None,
                 retries: int = 0, retry_delay: float = 0, grace: float = 5.0,
                 on_status: Callable[[dict[str, Any]], None] | None = None,
                 on_usage: Callable[[Usage], None] | None = None,
                 **kwargs: Any) -> _T:
    """Call `fn(*args, **kwargs)` in a forked worker process and return its value.

    - fn raises: the same exception is raised here, its `__cause__` a RemoteTraceback
      holding the worker's traceback text.
    - The worker dies first (a signal, sys.exit, os._exit, a segfault, the OOM killer):
      WorkerCrashed, with `.exitcode`, `.signal`, `.pid` and the likely cause.
    - `timeout` seconds pass (per attempt, on the monotonic clock): the worker gets SIGTERM,
      then SIGKILL after `grace` seconds; then WorkerTimeout (a TimeoutError). `timeout`,
      `grace` and `retry_delay` are at most 10 years, as on the command line (NaN or
      infinity is a ValueError); `timeout=None` is no limit.
    - The value or exception cannot be pickled back: ResultNotPicklable or
      ExceptionNotPicklable, naming the type. These are never retried.
    - fn's exceptions, crashes and timeouts are retried up to `retries` times, `retry_delay`
      seconds apart (a Ctrl-C interrupts the delay); the last failure is raised.
    - `on_status` is called here, in the caller's thread, with the fields of each
      update_status() call fn makes, in order, before run_isolated returns. If it raises,
      the worker is stopped and the exception propagates.
    - `on_usage` is called here, once per attempt that ends (with a value, an exception,
      a crash or a timeout; retried ones too), right after its worker is reaped, with a
      `pwsup.util.usage.Usage`: the worker's CPU time (user, system), peak RSS and wall time, from
      `wait4` — so fn's own child processes count once the worker reaped them (a
      `subprocess.run` does). Not called for an attempt whose worker something else
      reaped (SIGCHLD set to SIG_IGN), nor when Ctrl-C interrupts the call. If it raises,
      the exception propagates (no retry follows).
    - Ctrl-C while waiting stops the worker (SIGTERM, then SIGKILL after `grace`, or at
      once on a second Ctrl-C), then KeyboardInterrupt propagates.

    The keyword names above are reserved (see the module docstring); all other keyword
    arguments go to fn. The worker is gone, reaped, and its pipe closed when this returns
    or raises. Processes that fn started are stopped with the worker when the call ends
    without an outcome (timeout, crash, Ctrl-C, or the caller killed outright: see
    `keeper`); after an outcome they are fn's to manage. As with any fork: do
    not call it while another thread holds a lock that fn needs (Python 3.12+ warns about
    forking a multi-threaded process).
    """
    _check_arguments(fn, timeout, retries, retry_delay, grace)
    call = Call(fn, args, kwargs)
    settings = _Settings(timeout, grace, on_status, on_usage)
    attempts_left = retries
    while True:
        outcome = _attempt(call, settings)
        if isinstance(outcome, Result) and outcome.status is Status.OK:
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
    return send_status(fields)


def _check_arguments(fn: object, timeout: float | None, retries: int, retry_delay: float,
                     grace: float) -> None:
    """Reject bad settings here, in the caller, before anything is forked. Durations are
    bounded as on the command line (`handle.MAX_SECONDS`, 10 years): NaN, infinity and
    more would otherwise be accepted, then fail as an OverflowError with fn running."""
    if not callable(fn):
        raise TypeError(f"run_isolated() needs a callable, not {type(fn).__name__}")
    if timeout is not None:
        check_seconds("timeout", timeout, positive=True, none_allowed=True)
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0, not {retries!r}")
    check_seconds("retry_delay", retry_delay)
    check_seconds("grace", grace)


# -- one attempt ----------------------------------------------------------------------------


def _attempt(call: Call, settings: _Settings) -> Result | _Failure:
    """One worker, from fork to reap; its outcome, a crash or a timeout."""
    deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
    with spawned(call, settings.grace) as worker:
        try:
            outcome: Result | _Failure = _await_outcome(worker, deadline, settings)
        except TransferError as error:  # what the caller could not unpickle: its cause kept
            outcome = _Failure(error, error.__cause__, retryable=False)
        if isinstance(outcome, Result):  # it leaves right after sending: reap it
            worker.wait_exit(max(settings.grace, _AFTER_RESULT))
    if settings.on_usage is not None and worker.usage is not None:
        settings.on_usage(worker.usage)  # the worker is reaped: its figures are whole
    return outcome


def _await_outcome(worker: WorkerHandle, deadline: float | None,
                   settings: _Settings) -> Result | _Failure:
    """Deliver status updates until the outcome arrives, the worker dies without one, or
    the deadline passes (then the worker is stopped here)."""
    while True:
        for message in worker.messages():
            if isinstance(message, Result):
                return message
            if settings.on_status is not None:
                settings.on_status(message.fields)
        if worker.wait_status is not None:
            crashed = WorkerCrashed.from_wait_status(worker.pid, worker.wait_status)
            return _Failure(crashed, None, retryable=True)
        left = remaining(deadline)
        if left == 0:
            return _timed_out(worker, settings)
        worker.wait_for_event(left)


def _timed_out(worker: WorkerHandle, settings: _Settings) -> _Failure:
    killed = worker.stop(settings.grace)
    timeout = cast("float", settings.timeout)
    error = WorkerTimeout.after(timeout, pid=worker.pid, grace=settings.grace, killed=killed)
    return _Failure(error, None, retryable=True)


def _failure_of(outcome: Result | _Failure) -> _Failure:
    """What to raise for an outcome other than OK, and whether a retry may help."""
    if isinstance(outcome, _Failure):
        return outcome
    if outcome.status is Status.RAISED:
        exception, text = outcome.payload
        return _Failure(exception, RemoteTraceback(text), retryable=True)
    problem: Problem = outcome.payload
    cause = RemoteTraceback(problem.traceback) if problem.traceback else None
    error_type = ExceptionNotPicklable if problem.what == "exception" else ResultNotPicklable
    return _Failure(error_type.of(problem.type_name, problem.reason), cause, retryable=False)
