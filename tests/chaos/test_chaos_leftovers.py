"""Leftovers that fight back: many of them, stopped ones, ones that respawn on SIGTERM."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import CHILD_LIFETIME, pwsup_cmd, python_cmd

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.runner import Running

pytestmark = pytest.mark.chaos

RESPAWN_ON_SIGTERM = f"""
import os, signal, sys, time
generations = int(sys.argv[1])

def respawn(signum, frame):
    global generations
    generations -= 1
    if generations > 0 and os.fork() == 0:
        return  # the new generation carries on with the same handler
    os._exit(0)

signal.signal(signal.SIGTERM, respawn)
if os.fork() == 0:
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    end = time.monotonic() + {CHILD_LIFETIME}
    while (left := end - time.monotonic()) > 0:
        time.sleep(left)
    os._exit(0)
print("ready", os.getpid(), flush=True)
"""
"""Child that leaves a setsid()'d leftover which, on each SIGTERM, forks a successor and
exits (up to argv[1] generations): every sweep finds a new pid that got no SIGTERM yet."""

MANY_GROUP_MEMBERS = f"""
import os, signal, sys, time
count, ignore = int(sys.argv[1]), sys.argv[2] == "ignore"
for _ in range(count):
    if os.fork() == 0:
        if ignore:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        time.sleep({CHILD_LIFETIME})
        os._exit(0)
print("ready", os.getpid(), flush=True)
"""
"""Child that forks argv[1] members of its group (ignoring SIGTERM if argv[2] is "ignore")
and exits."""


def everything_below_this_test() -> list[tuple[int, str | None]]:
    """Live descendants of the test process (a subreaper, so orphans come back to it)."""
    return [(pid, procs.cmdline(pid)) for pid in procs.pid_tree(os.getpid())
            if procs.alive(pid)]


def test_leftover_that_respawns_on_sigterm_is_ended_by_the_grace_period_sigkill(
        start: Callable[..., Running]) -> None:
    """A leftover that forks a successor on every SIGTERM still ends at the grace period."""
    grace = 1.0
    pwsup = start(pwsup_cmd(python_cmd(RESPAWN_ON_SIGTERM, "100000"),
                            "--process-termination-grace-period", str(grace)))
    pwsup.expect_ready()
    # The documented worst case is two grace periods (the command's group, then leftovers
    # that ignore SIGTERM); the 100000 generations would outlast that many times over.
    bound = 2 * grace + SLACK
    code = pwsup.wait(timeout=bound)
    assert code == 0, pwsup.describe()
    assert pwsup.elapsed < bound, pwsup.describe()
    assert everything_below_this_test() == [], pwsup.describe()


def test_stopped_leftover_is_killed_after_the_grace_period(
        start: Callable[..., Running]) -> None:
    """A leftover stopped with SIGSTOP (so SIGTERM stays pending) is SIGKILLed at grace."""
    code = f"""
        import os, signal, time
        child = os.fork()
        if child == 0:
            os.kill(os.getpid(), signal.SIGSTOP)
            time.sleep({CHILD_LIFETIME})
            os._exit(0)
        os.waitpid(child, os.WUNTRACED)
        print("stopped", child, flush=True)
        print("ready", os.getpid(), flush=True)
        """
    grace = 1.0
    pwsup = start(pwsup_cmd(python_cmd(code), "--process-termination-grace-period", str(grace)))
    stopped = procs.Proc.of(int(pwsup.expect("stopped ").split()[1]))
    pwsup.expect_ready()
    assert pwsup.wait() == 0, pwsup.describe()
    # Its SIGTERM stays pending: only the SIGKILL one grace period later ends it.
    assert grace - 0.1 <= pwsup.elapsed < grace + SLACK, pwsup.describe()
    assert not stopped.alive()


@pytest.mark.parametrize("on_sigterm", ["die", "ignore"])
def test_many_leftovers_are_all_ended(start: Callable[..., Running], on_sigterm: str) -> None:
    """50 group members left behind all end: by SIGTERM, or by SIGKILL after the grace."""
    grace = 1.0
    pwsup = start(pwsup_cmd(python_cmd(MANY_GROUP_MEMBERS, "50", on_sigterm),
                            "--process-termination-grace-period", str(grace)))
    pwsup.expect_ready()
    assert pwsup.wait() == 0, pwsup.describe()
    # Dying of SIGTERM takes no grace at all; ignoring it takes the one grace period.
    assert pwsup.elapsed < grace + SLACK, pwsup.describe()
    assert everything_below_this_test() == [], pwsup.describe()


def test_leftovers_ignoring_sigterm_after_a_time_limit_are_killed_too(
        start: Callable[..., Running]) -> None:
    """After a time limit, a group member that ignores SIGTERM is SIGKILLed; exit 124."""
    code = f"""
        import os, signal, sys, time
        read_end, write_end = os.pipe()
        if os.fork() == 0:
            os.close(read_end)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("member", os.getpid(), flush=True)
            os.close(write_end)  # EOF for the command: the member ignores SIGTERM now
            time.sleep({CHILD_LIFETIME})
            os._exit(0)
        os.close(write_end)
        os.read(read_end, 1)
        print("ready", os.getpid(), flush=True)
        time.sleep({CHILD_LIFETIME})
        """
    limit, grace = 1.0, 0.5
    pwsup = start(pwsup_cmd(python_cmd(code), "-t", str(limit),
                            "--process-termination-grace-period", str(grace)))
    member = procs.Proc.of(int(pwsup.expect("member ").split()[1]))
    pwsup.expect_ready()
    assert pwsup.wait() == 124, pwsup.describe()
    # The limit, then at most two grace periods (the group's, the leftover's).
    assert limit <= pwsup.elapsed < limit + 2 * grace + SLACK, pwsup.describe()
    assert not member.alive()
