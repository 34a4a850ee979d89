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
from helpers.bounds import SLACK
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

RESTARTING = "the reporter process exited unexpectedly; restarting it in "
"""The start of pwsup's warning when it lost its reporter; the delay (seconds) follows."""


def reporters_of(pwsup_pid: int) -> list[procs.Proc]:
    """pwsup's live children titled as its reporter."""
    found = []
    for pid in procs.children(pwsup_pid):
        if procs.alive(pid) and (procs.cmdline(pid) or "").startswith("pwsup reporter:"):
            found.append(procs.Proc.of(pid))
    return found


def wait_for_reporter(pwsup_pid: int, exclude: frozenset[procs.Proc] = frozenset(),
                      timeout: float = SLACK) -> procs.Proc:
    found: list[procs.Proc] = []

    def new_reporter() -> bool:
        found[:] = [r for r in reporters_of(pwsup_pid) if r not in exclude]
        return len(found) == 1

    procs.wait_until(new_reporter, timeout, "a (new) reporter process titled 'pwsup reporter:'")
    return found[0]


def restart_delay(pwsup: Running) -> float:
    """The delay pwsup announces for restarting its lost reporter (it logs it at once)."""
    line = pwsup.expect(lambda text: RESTARTING in text, stream="err")
    return float(line.split(RESTARTING, 1)[1].split()[0])


def test_killed_reporter_is_replaced_and_the_command_keeps_running(
        start: Callable[..., Running]) -> None:
    """SIGKILL the reporter: a new one (new pid, same title) appears; the command runs on."""
    pwsup = start(pwsup_cmd(python_cmd(ECHO_STDIN)), stdin=subprocess.PIPE)
    command = pwsup.expect_ready()
    reporter = wait_for_reporter(pwsup.pid)
    title = reporter.cmdline()
    os.kill(reporter.pid, signal.SIGKILL)
    delay = restart_delay(pwsup)
    replacement = wait_for_reporter(pwsup.pid, exclude=frozenset({reporter}),
                                    timeout=delay + SLACK)
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
    delays: list[float] = []
    reporter = wait_for_reporter(pwsup.pid)
    for round_number in range(3):
        seen.add(reporter)
        os.kill(reporter.pid, signal.SIGKILL)
        # Each loss is announced with its restart delay; the new reporter comes after it.
        delays.append(restart_delay(pwsup))
        reporter = wait_for_reporter(pwsup.pid, exclude=frozenset(seen),
                                     timeout=delays[-1] + SLACK)
        pwsup.write(f"round {round_number}\n")
        assert pwsup.read_line() == f"echo round {round_number}", pwsup.describe()
    assert delays == sorted(delays), f"no backoff: {delays}"
    assert delays[0] < delays[-1], f"no backoff: {delays}"
    assert command.alive()
    pwsup.close_stdin()
    assert pwsup.wait() == 0, pwsup.describe()


@pytest.mark.parametrize("command_on_sigterm", ["dies", "ignores"])
def test_killed_parent_makes_the_reporter_end_the_whole_group(
        start: Callable[..., Running], command_on_sigterm: str) -> None:
    """SIGKILL pwsup's parent: the reporter ends the command's group (TERM, grace, KILL)."""
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
    gone = procs.wait_for_exit([command, forked], grace + SLACK) - killed
    if command_on_sigterm == "ignores":
        # Nothing but a SIGKILL ends them, and that only comes after the grace period.
        assert gone >= grace - 0.1, f"group gone {gone:.3f} s after the kill: no grace"
    # They are orphans of this (subreaper) process now: reap them, as init would.
    procs.reap_zombie_children(skip=[pwsup.pid])
    procs.wait_for_exit([reporter], SLACK)
    assert pwsup.wait() == -signal.SIGKILL


def test_replacement_reporter_also_ends_the_group_when_the_parent_is_killed(
        start: Callable[..., Running]) -> None:
    """After a reporter restart, the new reporter still knows the group to terminate."""
    grace = 0.5
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork", "--ignore", "SIGTERM"),
                            "--process-termination-grace-period", str(grace)))
    forked = pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    first = wait_for_reporter(pwsup.pid)
    os.kill(first.pid, signal.SIGKILL)
    replacement = wait_for_reporter(pwsup.pid, exclude=frozenset({first}),
                                    timeout=restart_delay(pwsup) + SLACK)
    pwsup.signal(signal.SIGKILL)
    procs.wait_for_exit([command, forked], grace + SLACK)
    procs.reap_zombie_children(skip=[pwsup.pid])
    procs.wait_for_exit([replacement], SLACK)
    assert pwsup.wait() == -signal.SIGKILL


def test_killed_parent_during_a_retry_wait_leaves_nothing_running(
        start: Callable[..., Running]) -> None:
    """SIGKILL pwsup between attempts: the reporter exits and nothing is left."""
    pwsup = start(pwsup_cmd(["sh", "-c", "exit 1"], "-r", "3", "--process-retry-delay", "30"))
    pwsup.expect(lambda line: "retrying" in line, stream="err")
    reporter = wait_for_reporter(pwsup.pid)
    pwsup.signal(signal.SIGKILL)
    procs.wait_for_exit([reporter], SLACK)
    assert pwsup.wait() == -signal.SIGKILL
