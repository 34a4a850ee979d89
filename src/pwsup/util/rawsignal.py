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

__all__ = ["signal", "signal_name"]

_NAMES: dict[int, str] = {}


def signal_name(signum: int) -> str:
    """'SIGTERM' for 15; 'signal 40' for a number without a name (most real-time ones)."""
    if not _NAMES:
        for name, value in sorted(vars(signal).items()):  # aliases: the first, as `signal`
            if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(value, int):
                _NAMES.setdefault(value, name)
    return _NAMES.get(signum, f"signal {signum}")
