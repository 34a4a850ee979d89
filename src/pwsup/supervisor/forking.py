"""The one way pwsup forks: the command, the reporter, the resolver, an embedded worker.

Each of those children needs the same few steps around `os.fork()`, in the same order,
and each step exists because leaving it out once went wrong:

1. **Signals blocked across the fork.** Until the child has set its own dispositions, a
   signal must not run one of the parent's Python handlers in it (a KeyboardInterrupt
   would unwind into the parent's code, running in the wrong process).
2. **The parent's handlers forgotten.** Every Python-level handler goes back to the
   default and the wakeup fd is dropped: the child's signals must never wake the parent's
   loop through a pipe they still share.
3. **The parent-death signal**, where the child must not outlive pwsup, armed before
   anything else runs — then a check that the parent is still the one that forked, since
   it may have died before the `prctl`, and then no signal would ever come.
4. **A way out through `os._exit` on every path.** A child that returned or raised into
   the parent's code would run the parent's loop, `finally` blocks and `atexit` hooks a
   second time. Whatever `child` does, the process ends here.

The child starts with every signal still blocked: `child(mask)` sets what it needs, then
restores `mask` (the forking thread's mask before the fork) or whichever mask it wants.

A fork that fails (EAGAIN under `RLIMIT_NPROC`, ENOMEM) raises `ForkError`, which is both
a `PwsupError` and the `OSError` it stands for: its `strerror` is the system's words, and
its text is the one line a user reads, "could not start the reporter: Resource temporarily
unavailable", naming what could not be started.
"""

from __future__ import annotations

import os

from pwsup.errors import PwsupError
from pwsup.supervisor import procs
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

CHILD_FAILED = 70
"""Exit code of a child whose body raised, or whose parent died before it was set up
(EX_SOFTWARE: nobody is left to read a better one)."""

_ALL_SIGNALS = signal.valid_signals()


class ForkError(PwsupError, OSError):
    """`fork()` failed: out of processes or memory. `errno` and `strerror` are the
    system's; `what` names the process that could not be started."""

    def __init__(self, number: int, what: str) -> None:
        super().__init__(number, os.strerror(number))
        self.what = what

    def __str__(self) -> str:
        return f"could not start {self.what}: {self.strerror}"

    def __reduce__(self) -> tuple[type[ForkError], tuple[int, str]]:
        return ForkError, (self.errno or 0, self.what)


def fork(child: Callable[[set[int]], int], *, what: str,
         death_signal: int | None = None, close_fds: tuple[int, ...] = ()) -> int:
    """Fork; run `child(mask)` in the child and leave with its return value. Returns the
    child's pid in the parent, or raises ForkError.

    `what` names the child in the error ("the reporter"); `death_signal` is sent to the
    child when the parent dies (None: the child is meant to outlive it); `close_fds` are
    descriptors the child must not keep."""
    parent = os.getpid()
    mask = signal.pthread_sigmask(signal.SIG_SETMASK, _ALL_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _enter_child(child, mask, parent, death_signal, close_fds)
    except OSError as e:
        raise ForkError(e.errno or 0, what) from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return pid


def _enter_child(child: Callable[[set[int]], int], mask: set[int],
                 parent: int, death_signal: int | None, close_fds: tuple[int, ...]) -> NoReturn:
    code = CHILD_FAILED
    try:
        _forget_parent_handlers()
        if death_signal is not None:
            procs.set_parent_death_signal(death_signal)
            if os.getppid() != parent:
                os._exit(CHILD_FAILED)  # the parent died before the signal was armed
        for fd in close_fds:
            procs.close_quietly(fd)
        code = child(mask)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else CHILD_FAILED
    except BaseException as e:
        say(f"PWSUP: ERROR: a forked process failed: {type(e).__name__}")
    finally:
        os._exit(code)


def _forget_parent_handlers() -> None:
    signal.set_wakeup_fd(-1)
    for signum in _ALL_SIGNALS:
        if callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)


def say(line: str) -> None:
    """Write one line to fd 2 — in a forked child, where Python's buffered streams belong
    to the parent and may hold its unwritten output."""
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass  # no stderr to say it on: the exit code still tells
