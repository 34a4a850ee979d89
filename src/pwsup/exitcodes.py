"""Exit codes pwsup uses, and the one function that decodes a wait status.

pwsup exits with what its command exited with, the way a shell reports it, so callers can
treat `pwsup -- cmd` like `cmd`. Its own codes avoid the range commands commonly use:

| code    | meaning                                                            |
|---------|--------------------------------------------------------------------|
| N       | the command exited with N (last attempt)                           |
| 128+N   | the command died of signal N (143 = SIGTERM, 137 = SIGKILL)        |
| 124     | the last attempt hit its time limit (like coreutils `timeout`)     |
| 123     | the last attempt's process tree exceeded --memory-limit            |
| 126/127 | the command could not be executed / was not found                  |
| 75      | the server refused to start it (concurrency) or stopped it        |
| 71      | pwsup itself could not work (out of file descriptors, processes)   |
| 77      | the server refused the API key (with --prevent-offline-execution)  |
| 78      | bad configuration: nothing was started                             |
| 1       | the server could not be reached (with --prevent-offline-execution) |
"""

from __future__ import annotations

import os

SUCCESS = 0
FAILURE = 1
TIMED_OUT = 124
MEMORY_EXCEEDED = 123
NOT_EXECUTABLE = 126
NOT_FOUND = 127
TEMPFAIL = 75
NOPERM = 77
OS_ERROR = 71
CONFIG = 78
SIGNAL_BASE = 128


def from_wait_status(status: int) -> int:
    """Shell-style exit code of a wait status: the exit code, or 128+N for signal N."""
    if os.WIFSIGNALED(status):
        return SIGNAL_BASE + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return FAILURE  # stopped/continued statuses are never asked for (no WUNTRACED)


def signal_of(exit_code: int) -> int | None:
    """The signal number a shell-style exit code stands for, if any."""
    return exit_code - SIGNAL_BASE if SIGNAL_BASE < exit_code < SIGNAL_BASE + 65 else None


def describe(exit_code: int) -> str:
    """Human description: 'exit code 3' or 'signal SIGKILL (137)'."""
    signum = signal_of(exit_code)
    if signum is None:
        return f"exit code {exit_code}"
    from pwsup.util.rawsignal import signal_name

    return f"{signal_name(signum)} ({exit_code})"
