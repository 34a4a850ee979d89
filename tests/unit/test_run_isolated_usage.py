"""run_isolated(on_usage=...): each attempt's cost, from wait4, in the caller.

The function burns a known amount of CPU (until `os.times()` shows 0.3 s of user time, so a
busy machine only makes it slower) and writes a known amount of memory; the figures must
cover them. on_usage is called once per attempt that ends: with a value, a crash, a
timeout, retried or not.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from pwsup.embedded.isolated import run_isolated
from pwsup.errors import WorkerCrashed, WorkerTimeout
from pwsup.util.usage import Usage

MIB = 1024 * 1024


def burn(megabytes: int, exit_code: int | None = None) -> int:
    start = os.times().user
    while os.times().user - start < 0.3:
        for _ in range(10000):
            pass
    block = b"x" * (megabytes * MIB)
    if exit_code is not None:
        os._exit(exit_code)
    return len(block)


def test_on_usage_gets_the_cost_of_a_successful_attempt() -> None:
    got: list[Usage] = []
    assert run_isolated(burn, 64, on_usage=got.append) == 64 * MIB
    (usage,) = got
    assert isinstance(usage, Usage)
    assert usage.user_seconds >= 0.2
    assert usage.max_rss_bytes >= 64 * MIB
    assert usage.wall_seconds >= usage.user_seconds * 0.9
    assert usage.system_seconds >= 0


def test_on_usage_gets_the_cost_of_a_crashed_attempt() -> None:
    got: list[Usage] = []
    with pytest.raises(WorkerCrashed):
        run_isolated(burn, 32, 3, on_usage=got.append)
    (usage,) = got
    assert usage.user_seconds >= 0.2
    assert usage.max_rss_bytes >= 32 * MIB


def test_on_usage_gets_the_cost_of_an_attempt_that_raised() -> None:
    def fail() -> None:
        burn(16)
        raise KeyError("late")

    got: list[Usage] = []
    with pytest.raises(KeyError):
        run_isolated(fail, retries=1, on_usage=got.append)
    assert len(got) == 2
    assert all(usage.user_seconds >= 0.2 for usage in got), got


def test_on_usage_is_called_for_every_attempt_timeouts_included() -> None:
    """Two attempts that time out (SIGTERM): two calls, each covering its own wall time."""
    got: list[Usage] = []
    with pytest.raises(WorkerTimeout):
        run_isolated(time.sleep, 30, timeout=0.3, grace=5, retries=1, on_usage=got.append)
    assert len(got) == 2
    assert all(usage.wall_seconds >= 0.3 for usage in got), got


def test_on_usage_covers_the_child_processes_fn_waited_for() -> None:
    def run_child() -> int:
        import subprocess
        import sys

        code = ("import os\nstart = os.times().user\n"
                "while os.times().user - start < 0.3:\n    pass\n")
        return subprocess.run([sys.executable, "-c", code], check=True).returncode

    got: list[Usage] = []
    assert run_isolated(run_child, on_usage=got.append) == 0
    assert got[0].user_seconds >= 0.2


def test_on_usage_is_not_called_when_the_worker_was_reaped_elsewhere() -> None:
    """SIGCHLD set to SIG_IGN: the kernel reaps the worker, its figures are lost."""
    got: list[Usage] = []
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert run_isolated(int, "7", on_usage=got.append) == 7
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert got == []


def test_on_usage_raising_propagates() -> None:
    def refuse(usage: Usage) -> None:
        raise LookupError("no")

    with pytest.raises(LookupError):
        run_isolated(int, "1", on_usage=refuse)
