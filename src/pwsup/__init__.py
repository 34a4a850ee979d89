"""pwsup: a process supervisor for jobs, containers and services.

Wrapped mode is the `pwsup` command (see `pwsup.cli`). This package keeps its import
light: the supervisor's start-up time depends on it, so the public helpers below are
imported on first use.
"""

from __future__ import annotations

from pwsup._version import __version__

TYPE_CHECKING = False  # importing `typing` here would slow every start of the supervisor
if TYPE_CHECKING:
    from typing import Any

    from pwsup.status import StatusUpdater

__all__ = ["StatusUpdater", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "StatusUpdater":
        from pwsup.status import StatusUpdater

        return StatusUpdater
    raise AttributeError(f"module 'pwsup' has no attribute {name!r}")
