"""The `signal` module without its enums, for the parent's start path.

`import signal` builds three `IntEnum` classes (Signals, Handlers, Sigmasks), and with them
imports `enum`, `functools` and `collections`: about 3.5 ms on a small machine, more than a
third of Python's own start-up, paid by every `pwsup -- cmd` before the command starts.
`_signal` is the C module `signal` wraps, with the same functions and constants as plain
ints. The type checker is shown `signal` itself: the two agree on every name used here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    import _signal as signal

__all__ = ["HeldInterrupt", "signal", "signal_name"]

_NAMES: dict[int, str] = {}


def signal_name(signum: int) -> str:
    """'SIGTERM' for 15; 'signal 40' for a number without a name (most real-time ones)."""
    if not _NAMES:
        for name, value in sorted(vars(signal).items()):  # aliases: the first, as `signal`
            if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(value, int):
                _NAMES.setdefault(value, name)
    return _NAMES.get(signum, f"signal {signum}")


class HeldInterrupt:
    """Within the block, a Ctrl-C (SIGINT) is held back and acted on when it ends.

    Python raises KeyboardInterrupt between any two bytecodes, so a second Ctrl-C can land
    between `os.open` (or `pidfd_open`) and the `try` that closes it, or between taking a
    descriptor out of a table and closing it: a descriptor leaks. Blocks that hold
    descriptors only briefly (a /proc scan, a claim) run under this instead; waits stay
    interruptible. A handler is only swapped in the main thread (the only one Python
    raises KeyboardInterrupt in), and only a Python-level one (else nothing is changed)."""

    def __enter__(self) -> HeldInterrupt:
        self.came = False
        self.previous: object = None
        try:
            current = signal.getsignal(signal.SIGINT)
            if current is not None:
                signal.signal(signal.SIGINT, self._note)
                self.previous = current
        except ValueError:  # not the main thread: no KeyboardInterrupt arrives here
            pass
        return self

    def _note(self, signum: int, frame: object) -> None:
        self.came = True

    def __exit__(self, *exc: object) -> None:
        previous = self.previous
        if previous is None:
            return
        signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]
        if not self.came:
            return
        if callable(previous):
            previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            import os

            os.kill(os.getpid(), signal.SIGINT)
