"""Killing pwsup's processes: a killed reporter is replaced; a killed parent makes the
reporter end the command's whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.runner import print_signals_cmd, pwsup_cmd, python_cmd

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.runner import Running

pytestmark = pytest.mark.chaos

ECHO_STDIN = """
import os, sys
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    print("echo", line.strip(), flush=True)
"""
"""Child: `ready <pid>`, then echoes each stdin line as `echo <line>` until stdin closes."""

RESTART_BOUND = 2.0
"""A lost reporter is restarted 0.05 s after pwsup notices; 2 s leaves a loaded machine
plenty of room but fails a missing restart (or one that waits for a later backoff step)."""


def reporters_of(pwsup_pid: int) -> list[procs.Proc]:
    """pwsup's live children titled as its reporter."""
    found = []
    for pid in procs.children(pwsup_pid):
        if procs.alive(pid) and (procs.cmdline(pid) or "").startswith("pwsup reporter:"):
            found.append(procs.Proc.of(pid))
    return found


def wait_for_reporter(pwsup_pid: int, exclude: frozenset[procs.Proc] = frozenset(),
                      timeout: float = RESTART_BOUND) -> procs.Proc:
    found: list[procs.Proc] = []

    def new_reporter() -> bool:
        found[:] = [r for r in reporters_of(pwsup_pid) if r not in exclude]
        return len(found) == 1

    procs.wait_until(new_reporter, timeout, "a (new) reporter process titled 'pwsup reporter:'")
    return found[0]


def test_killed_reporter_is_replaced_and_the_command_keeps_running(
        start: Callable[..., Running]) -> None:
    """SIGKILL the reporter: a new one (new pid, same title) appears; the command runs on."""
    pwsup = start(pwsup_cmd(python_cmd(ECHO_STDIN)), stdin=subprocess.PIPE)
    command = pwsup.expect_ready()
    reporter = wait_for_reporter(pwsup.pid)
    title = reporter.cmdline()
    os.kill(reporter.pid, signal.SIGKILL)
    replacement = wait_for_reporter(pwsup.pid, exclude=frozenset({reporter}))
    assert replacement.pid != reporter.pid
    assert replacement.cmdline() == title
    assert command.alive()
    pwsup.write("still here\n")
    assert pwsup.read_line() == "echo still here", pwsup.describe()
    pwsup.close_stdin()
    assert pwsup.wait() == 0, pwsup.describe()
    assert not replacement.alive()


def test_reporter_killed_again_and_again_is_replaced_each_time(
        start: Callable[..., Running]) -> None:
    """Three reporter kills in a row: each time a new reporter; the run ends normally."""
    pwsup = start(pwsup_cmd(python_cmd(ECHO_STDIN)), stdin=subprocess.PIPE)
    command = pwsup.expect_ready()
    seen: set[procs.Proc] = set()
    reporter = wait_for_reporter(pwsup.pid)
    for round_number in range(3):
        seen.add(reporter)
        os.kill(reporter.pid, signal.SIGKILL)
        # Backoff after the n-th loss: 0.05, 0.2, 0.5 s; RESTART_BOUND on top of it.
        reporter = wait_for_reporter(pwsup.pid, exclude=frozenset(seen),
                                     timeout=RESTART_BOUND + 0.5)
        pwsup.write(f"round {round_number}\n")
        assert pwsup.read_line() == f"echo round {round_number}", pwsup.describe()
    assert command.alive()
    pwsup.close_stdin()
    assert pwsup.wait() == 0, pwsup.describe()


@pytest.mark.parametrize("command_on_sigterm", ["dies", "ignores"])
def test_killed_parent_makes_the_reporter_end_the_whole_group(
        start: Callable[..., Running], command_on_sigterm: str) -> None:
    """SIGKILL pwsup's parent: the reporter ends the command's group within grace + 1 s."""
    grace = 1.0
    options = ["--fork"] + (["--ignore", "SIGTERM"] if command_on_sigterm == "ignores"
                            else ["--default", "SIGTERM"])
    pwsup = start(pwsup_cmd(print_signals_cmd(*options),
                            "--process-termination-grace-period", str(grace)))
    forked = pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    reporter = wait_for_reporter(pwsup.pid)
    killed = time.monotonic()
    pwsup.signal(signal.SIGKILL)
    gone = procs.wait_for_exit([command, forked], grace + 1.0) - killed
    if command_on_sigterm == "ignores":
        # Nothing but a SIGKILL ends them, and that only comes after the grace period.
        assert gone >= grace - 0.1, f"group gone {gone:.3f} s after the kill: no grace"
    # They are orphans of this (subreaper) process now: reap them, as init would.
    procs.reap_zombie_children(skip=[pwsup.pid])
    procs.wait_for_exit([reporter], 2.0)
    assert pwsup.wait() == -signal.SIGKILL


def test_replacement_reporter_also_ends_the_group_when_the_parent_is_killed(
        start: Callable[..., Running]) -> None:
    """After a reporter restart, the new reporter still knows the group to terminate."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork", "--ignore", "SIGTERM"),
                            "--process-termination-grace-period", "0.5"))
    forked = pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    first = wait_for_reporter(pwsup.pid)
    os.kill(first.pid, signal.SIGKILL)
    replacement = wait_for_reporter(pwsup.pid, exclude=frozenset({first}))
    pwsup.signal(signal.SIGKILL)
    procs.wait_for_exit([command, forked], 0.5 + 1.0)
    procs.reap_zombie_children(skip=[pwsup.pid])
    procs.wait_for_exit([replacement], 2.0)
    assert pwsup.wait() == -signal.SIGKILL


def test_killed_parent_during_a_retry_wait_leaves_nothing_running(
        start: Callable[..., Running]) -> None:
    """SIGKILL pwsup between attempts: the reporter exits and nothing is left."""
    pwsup = start(pwsup_cmd(["sh", "-c", "exit 1"], "-r", "3", "--process-retry-delay", "30"))
    pwsup.expect(lambda line: "retrying" in line, stream="err")
    reporter = wait_for_reporter(pwsup.pid)
    pwsup.signal(signal.SIGKILL)
    procs.wait_for_exit([reporter], 2.0)
    assert pwsup.wait() == -signal.SIGKILL
