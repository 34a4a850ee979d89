"""The run_isolated worker: what runs in the forked child, from the fork to `os._exit`.

```
 reset signal handlers (PR_SET_PDEATHSIG is armed by the fork), faulthandler; unblock
 value = fn(*args, **kwargs)
   ├─ update_status(**fields), any number: a StatusUpdate frame each
   └─ the outcome, pickled, exactly once (see `frames`)
 os._exit() in a finally, always
```

- **The worker never returns into the caller's code**: the fork returned into it, so a
  return or an exception escaping here would run the caller's program a second time. Its
  exit code goes to `os._exit` (through `forking.fork`), so neither the caller's `atexit`
  hooks nor fn's run.
- **sys.exit() in fn ends the worker**, like in any process, with the exit status Python
  itself would give: the caller then gets WorkerCrashed with that exit code. Re-raising
  SystemExit in the caller would end the caller's program, which is what isolation is for.
- **Output is flushed before the outcome is sent**, so fn's prints come out before the
  caller has its value; and the caller flushes before forking, so its unflushed output is
  not written a second time by the worker.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pwsup.embedded import frames
from pwsup.util.rawsignal import signal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

SIGNALS = tuple(signal.valid_signals())
"""Fixed for the platform, and worth computing once: valid_signals() converts each number
to an enum member, which costs about 0.1 ms a call."""
EXIT_INTERNAL = 70
"""The worker's exit code when its own machinery failed (EX_SOFTWARE; details on its
stderr): the code `forking.fork` also gives a worker whose caller was gone as it started."""


@dataclass(frozen=True)
class Call:
    """What the worker calls. Never pickled: the fork copies it."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Sender:
    """The worker's end of the pipe. The lock keeps frames whole when fn's threads call
    update_status while the main thread sends the outcome."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def send(self, payload: bytes) -> None:
        with self.lock:
            frames.write_frame(self.fd, payload)


_sender: Sender | None = None
"""Set in a worker only: update_status() sends through it."""


def send_status(fields: dict[str, Any]) -> bool:
    """Send a status update to the caller; False (doing nothing) outside a worker."""
    sender = _sender
    if sender is None or sender.pid != os.getpid():  # not a worker, or a process fn forked
        return False
    sender.send(frames.dumps(frames.StatusUpdate(fields)))
    return True


COOKIE_VARIABLE = "PWSUP_RUN_COOKIE"
"""The same variable the command of a wrapped run gets (`config.childenv`)."""


def worker_main(call: Call, write_fd: int, mask: Iterable[int], cookie: str,
                ready: Callable[[], None]) -> int:
    """The worker's whole life; returns its exit code, for os._exit (never a return into
    the caller's code, the fork returned into it; never the caller's atexit hooks).
    `ready` runs once the worker leads its group and before fn runs (it registers the
    call with the keeper)."""
    global _sender
    try:
        _own_group_and_cookie(cookie)
        ready()
        _prepare_worker(mask)
        _sender = Sender(write_fd)
        result = _call(call)
        payload = frames.encode(result)
        flush_stdio()  # fn's output comes out before the caller gets its value
        _sender.send(payload)
        return 0
    except SystemExit as exit_:  # fn called sys.exit(): exit so (a pickling hook cannot: frames)
        return _exit_code(exit_)
    except BaseException:
        traceback.print_exc()
        return EXIT_INTERNAL
    finally:
        flush_stdio()


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed, or its reader is gone: nothing to save
            pass


def _own_group_and_cookie(cookie: str) -> None:
    """The worker leads a process group of its own, which fn's children join, and marks the
    environment of every program they run with the call's cookie: when the call ends
    without an outcome, the caller terminates both (see `handle.WorkerHandle.stop`). The
    caller makes the same setpgid() call, so neither order races."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # the caller did it first
    rest = dict(os.environ)
    outer = rest.pop(COOKIE_VARIABLE, None)
    os.environ.clear()  # the cookie goes first: the scan for it reads only the start
    os.environ[COOKIE_VARIABLE] = f"{cookie} {outer}" if outer else cookie
    os.environ.update(rest)


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
    for signum in SIGNALS:  # all of them again: the caller may have set one meanwhile
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


def _call(call: Call) -> frames.Result:
    try:
        return frames.Result(frames.Status.OK, call.fn(*call.args, **call.kwargs))
    except SystemExit:
        raise  # not an outcome: the worker exits with that code (see worker_main)
    except BaseException as exception:
        return frames.Result(frames.Status.RAISED, (exception, _format_traceback(exception)))


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
