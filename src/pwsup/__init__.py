"""pwsup: a process supervisor for jobs, containers and services.

Wrapped mode is the `pwsup` command (see `pwsup.cli`). For Python code, the package offers
`run_isolated`, `IsolatedPool` and `update_status` (embedded mode), `StatusUpdater` (status
updates from a wrapped command) and the exceptions pwsup raises, all rooted at `PwsupError`.

This package keeps its import light: the supervisor's start-up time depends on it, so each
public name is imported on first use, from the module that defines it.
"""

from pwsup._version import __version__

# Neither `typing` nor `__future__` is imported at run time (the one annotation naming a
# type-only import is a string): `import pwsup` comes first in every start of the
# supervisor and in user code, so it costs only what it must.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pwsup.embedded import IsolatedPool, run_isolated, update_status
    from pwsup.errors import (
        ArgumentsNotPicklable,
        ExceptionNotPicklable,
        IsolationError,
        PwsupError,
        RemoteTraceback,
        ResultNotPicklable,
        ResultNotUnpicklable,
        TransferError,
        WorkerCrashed,
        WorkerTimeout,
    )
    from pwsup.status import StatusUpdater

_HOMES = {
    "run_isolated": "pwsup.embedded",
    "IsolatedPool": "pwsup.embedded",
    "update_status": "pwsup.embedded",
    "StatusUpdater": "pwsup.status",
    "PwsupError": "pwsup.errors",
    "IsolationError": "pwsup.errors",
    "WorkerCrashed": "pwsup.errors",
    "WorkerTimeout": "pwsup.errors",
    "TransferError": "pwsup.errors",
    "ResultNotPicklable": "pwsup.errors",
    "ExceptionNotPicklable": "pwsup.errors",
    "ResultNotUnpicklable": "pwsup.errors",
    "RemoteTraceback": "pwsup.errors",
    "ArgumentsNotPicklable": "pwsup.errors",
}
"""Each lazily imported public name and the module it comes from."""

__all__ = [
    "ArgumentsNotPicklable",
    "ExceptionNotPicklable",
    "IsolatedPool",
    "IsolationError",
    "PwsupError",
    "RemoteTraceback",
    "ResultNotPicklable",
    "ResultNotUnpicklable",
    "StatusUpdater",
    "TransferError",
    "WorkerCrashed",
    "WorkerTimeout",
    "__version__",
    "run_isolated",
    "update_status",
]


def __getattr__(name: str) -> "Any":
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pwsup' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home), name)
    globals()[name] = value  # later lookups find it without calling back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
