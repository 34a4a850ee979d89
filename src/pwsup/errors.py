"""Exceptions that pwsup raises on its own account, and the words they use.

```
Exception
 ├── PwsupError                      anything pwsup raises on its own account
 │    ├── IsolationError             run_isolated could not bring back fn's own outcome
 │    │    ├── WorkerCrashed         the worker died before sending an outcome
 │    │    ├── WorkerTimeout         fn outlived its timeout; the worker was stopped
 │    │    │                           (also a builtin TimeoutError)
 │    │    └── TransferError         an outcome exists but could not cross the pipe
 │    │         ├── ResultNotPicklable      the worker could not pickle fn's return value
 │    │         ├── ExceptionNotPicklable   ... nor the exception fn raised
 │    │         ├── ResultNotUnpicklable    the caller could not unpickle what came back
 │    │         └── ArgumentsNotPicklable   IsolatedPool: fn or its arguments do not pickle
 │    │
 │    │   and, defined beside the code that raises them:
 │    ├── config.argv.UsageError, config.command.CommandError (also ValueError),
 │    │   embedded.procwrapper.ConfigurationError (also ValueError)   bad settings
 │    ├── secrets.errors.SecretsError and its kinds    a secret could not be had
 │    ├── runtime.errors.MetadataError                 runtime metadata could not be had
 │    ├── supervisor.forking.ForkError (also OSError)  out of processes or memory
 │    ├── supervisor.child.SpawnError                  the command could not be started
 │    ├── embedded.monitor.Denied (also RuntimeError)  the server refused the run
 │    ├── embedded.calldata.CallDataError (also ValueError)  a call's input or result
 │    │                                                that cannot be read or parsed
 │    ├── ipc.messages.DecodeError (also ValueError)   a frame that is not a message
 │    └── util.files.TooLarge (also ValueError)        a file over a reader's limit
 └── RemoteTraceback                 not raised: the worker's formatted traceback, attached
                                     as `__cause__` of an exception re-raised in the caller
```

Those that are also a builtin keep the builtin a caller caught before; catching
`PwsupError` catches anything pwsup raised on purpose (a test checks every class).

An exception that fn itself raised is not wrapped: run_isolated re-raises it as it was,
with a RemoteTraceback as its cause. Catching `IsolationError` therefore catches exactly the
failures of the isolation machinery and of the worker *process*, never fn's own errors.

Messages diagnose, so a reader can act without a debugger: they name the exit code with the
signal's name, the likely cause, and what to look at next. Every exception here pickles
(its structured fields ride in `__dict__`), so one raised inside a nested run_isolated
worker crosses back to the outer caller intact.
"""

from __future__ import annotations

import os

_CAUSES: dict[str, str] = {
    "SIGKILL": "killed from outside or by the out-of-memory killer "
    "(check the kernel log, e.g. `dmesg`, or the container's memory limit)",
    "SIGSEGV": "a crash in native code (a C extension, ctypes or the interpreter); "
    "faulthandler wrote the worker's Python stack to its stderr",
    "SIGBUS": "a crash in native code (often a truncated memory-mapped file)",
    "SIGABRT": "a crash in native code (abort(), e.g. a failed C assertion)",
    "SIGFPE": "a crash in native code (an arithmetic fault)",
    "SIGILL": "a crash in native code (an illegal instruction)",
    "SIGTERM": "terminated from outside (something sent it SIGTERM)",
    "SIGPIPE": "it wrote to a pipe or socket whose reader had gone",
}
"""Likely causes by signal name, for WorkerCrashed's message. Signals not listed get none.
(Names, not `signal.Signals` members: building those here would import `signal` and `enum`
on every start of the supervisor, which raises PwsupError subclasses too.)"""

STATUS_LOST = -1
"""In place of a wait status (never negative) when a worker's status could not be had."""


class PwsupError(Exception):
    """Base class of every exception pwsup raises on its own account."""


class IsolationError(PwsupError):
    """run_isolated could not bring back fn's outcome (fn's own exceptions are re-raised
    as they are, never wrapped in this)."""


class WorkerCrashed(IsolationError):
    """The worker process ended without sending an outcome: killed by a signal, or exited
    (sys.exit, os._exit, a C-level exit) before fn returned or raised.

    `exitcode` is the exit code when it exited, `signal` the signal number when one killed
    it (a `signal.Signals` member whenever the number has a name); one of the two is set,
    unless something else in the caller's process reaped the worker and so took its status.
    `pid` is the worker's (by now reaped) process id.
    """

    def __init__(self, message: str, *, pid: int | None = None, exitcode: int | None = None,
                 signal: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.signal = signal

    @classmethod
    def from_wait_status(cls, pid: int, wait_status: int) -> WorkerCrashed:
        """Build the diagnosis from a `waitpid` status (or STATUS_LOST), so every crash
        reads the same way."""
        if wait_status == STATUS_LOST:
            return cls(f"worker (pid {pid}) exited without returning a result; its exit "
                       f"status is unknown: something else in this process reaped it "
                       f"(SIGCHLD set to SIG_IGN, or a waitpid(-1) loop)", pid=pid)
        if os.WIFSIGNALED(wait_status):
            sig = _signal_of(os.WTERMSIG(wait_status))
            return cls(_killed_message(pid, sig), pid=pid, signal=sig)
        code = os.waitstatus_to_exitcode(wait_status)
        message = (f"worker (pid {pid}) exited with code {code} without returning a result "
                   f"(sys.exit() or os._exit() in fn or in code it called?)")
        return cls(message, pid=pid, exitcode=code)


class WorkerTimeout(IsolationError, TimeoutError):
    """fn did not finish within its timeout. The worker was sent SIGTERM, then SIGKILL if
    it was still there after the grace period; it is gone (reaped) by the time this is
    raised. A builtin TimeoutError too, so generic timeout handling catches it."""

    def __init__(self, message: str, *, timeout: float | None = None,
                 pid: int | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.pid = pid

    @classmethod
    def after(cls, timeout: float, *, pid: int, grace: float, killed: bool) -> WorkerTimeout:
        """Say how the worker was stopped: a worker that ignored SIGTERM is a clue too."""
        message = (f"fn did not finish within its {timeout:g} s timeout; its worker "
                   f"(pid {pid}) was stopped with SIGTERM")
        if killed:
            message += f", then SIGKILL: it was still running after the {grace:g} s grace period"
        return cls(message, timeout=timeout, pid=pid)


class TransferError(IsolationError):
    """fn finished, but its outcome could not cross the pipe between worker and caller.

    `type_name` names the type that failed (qualified, e.g. `_thread.lock`) and `reason`
    says why, in the pickler's own words. Retrying would fail the same way, so run_isolated
    never retries these.
    """

    _template = "{type_name} could not cross the pipe: {reason}"

    def __init__(self, message: str, *, type_name: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.reason = reason

    @classmethod
    def of(cls, type_name: str, reason: str) -> TransferError:
        """The error for `type_name`, in the words of the subclass's `_template`."""
        message = cls._template.format(type_name=type_name, reason=reason)
        return cls(message, type_name=type_name, reason=reason)


class ResultNotPicklable(TransferError):
    """fn returned a value the worker could not pickle (a lock, an open file, a generator,
    an instance of a class defined inside a function, ...)."""

    _template = ("fn's return value ({type_name}) could not be pickled to send it back to "
                 "the caller: {reason}. Return plain data, or convert the value inside fn.")


class ExceptionNotPicklable(TransferError):
    """fn raised an exception the worker could not pickle (or that would not unpickle:
    e.g. an `__init__` with required arguments it does not pass to `super().__init__`).
    Its `__cause__` is a RemoteTraceback with fn's traceback, so the failure is not lost."""

    _template = ("fn raised {type_name}, which could not be pickled to send it back to the "
                 "caller: {reason}. fn's traceback is this exception's __cause__. Raise "
                 "exceptions defined at module level, whose attributes pickle.")


class ResultNotUnpicklable(TransferError):
    """The worker sent a pickle that the caller could not load (a `__reduce__` that fails
    in the caller, a class the caller cannot import)."""

    _template = "the caller could not unpickle {type_name}: {reason}"


class ArgumentsNotPicklable(TransferError):
    """IsolatedPool could not pickle a task's function or arguments to send them to a
    worker (its workers exist before the task, so unlike run_isolated, whose fork copies
    them, a pool's task has to cross a pipe). Only that task's future fails."""

    _template = ("{type_name} could not be pickled to send it to a pool worker: {reason}. "
                 "Use a function defined at module level and arguments that pickle, or "
                 "run_isolated(), which copies them by forking.")


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in the worker. Never raised by
    itself: it is attached as the `__cause__` of the exception re-raised in the caller, so
    the caller's traceback printout shows the worker's frames too. `str()` of it is the
    traceback text, also kept as `.traceback`."""

    def __init__(self, traceback: str) -> None:
        super().__init__(traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        return self.traceback


def _signal_of(number: int) -> int:
    """The Signals member for `number`, or the bare number (most real-time signals have
    no member)."""
    from signal import Signals

    try:
        return Signals(number)
    except ValueError:
        return number


def _killed_message(pid: int, sig: int) -> str:
    name = getattr(sig, "name", None)
    message = f"worker (pid {pid}) was killed by {name or 'a real-time signal'} (signal {int(sig)})"
    cause = _CAUSES.get(name) if name else None
    return f"{message}: {cause}" if cause else message
