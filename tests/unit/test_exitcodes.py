"""Decoding wait statuses of real processes into shell-style exit codes."""

from __future__ import annotations

import os
import signal

import pytest

from pwsup import exitcodes


def _status_of(action: str, value: int) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            if action == "signal":
                if value != signal.SIGKILL:
                    signal.signal(value, signal.SIG_DFL)
                os.kill(os.getpid(), value)
        finally:
            os._exit(value if action == "exit" else 99)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize("code", [0, 1, 2, 77, 127, 128, 200, 255])
def test_exit_codes_pass_through(code: int) -> None:
    """A normal exit keeps its code."""
    assert exitcodes.from_wait_status(_status_of("exit", code)) == code


@pytest.mark.parametrize(("signum", "expected"), [
    (signal.SIGTERM, 143), (signal.SIGKILL, 137), (signal.SIGINT, 130), (signal.SIGHUP, 129),
])
def test_death_by_signal_is_128_plus_n(signum: int, expected: int) -> None:
    """Death by signal N is 128+N, as a shell reports it."""
    assert exitcodes.from_wait_status(_status_of("signal", signum)) == expected


def test_describe_names_signals() -> None:
    """Descriptions name the signal for 128+N codes."""
    assert exitcodes.describe(137) == "SIGKILL (137)"
    assert exitcodes.describe(3) == "exit code 3"
    assert exitcodes.signal_of(143) == signal.SIGTERM
    assert exitcodes.signal_of(5) is None
