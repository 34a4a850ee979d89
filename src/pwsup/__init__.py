"""pwsup: a process supervisor for jobs, containers and services.

Wrapped mode is the `pwsup` command (see `pwsup.cli`). This package keeps its import
light: the supervisor's start-up time depends on it.
"""

from pwsup._version import __version__

__all__ = ["__version__"]
