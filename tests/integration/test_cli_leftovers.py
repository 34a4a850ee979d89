"""What the command leaves behind — group members, setsid()'d daemons — is terminated
(SIGTERM, grace, SIGKILL) before pwsup exits, unless --keep-descendants."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import CHILD_LIFETIME, pwsup_cmd, python_cmd
from helpers.scripts import LEAVE_DAEMONS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from helpers.runner import Running

PROMPT = SLACK
"""Upper bound for "pwsup exits promptly", counted from the command's last line: nothing
documented delays it, and it is far below the default 30 s grace period, which a leftover
that dies of its SIGTERM must never make pwsup wait for."""


def exited_after(pwsup: Running, moment: float) -> float:
    """Seconds from `moment` (monotonic) to pwsup's exit."""
    assert pwsup.exited_at is not None, "not exited yet"
    return pwsup.exited_at - moment


def daemons_of(pwsup: Running) -> list[procs.Proc]:
    """Read the child's `daemon <pid>` lines up to its `ready <pid>` line."""
    return daemons_and_command(pwsup)[0]


def daemons_and_command(pwsup: Running) -> tuple[list[procs.Proc], int]:
    """The daemons announced by the child, and the child's (the command's) pid."""
    found = []
    while not (line := pwsup.read_line()).startswith("ready "):
        assert line.startswith("daemon "), pwsup.describe()
        found.append(procs.Proc.of(int(line.split()[1])))
    return found, int(line.split()[1])


def live_descendants_of_this_test() -> list[tuple[int, str | None]]:
    """Every live process below the test process (a subreaper: orphans come back to it)."""
    return [(pid, procs.cmdline(pid)) for pid in procs.pid_tree(os.getpid())
            if procs.alive(pid)]


def test_background_job_of_a_shell_is_terminated_and_pwsup_exits_promptly(
        start: Callable[..., Running]) -> None:
    """`pwsup -- sh -c 'sleep 30 & echo started'` exits at once and leaves no sleep."""
    pwsup = start(pwsup_cmd(["sh", "-c", "sleep 30 & echo $!; echo started"]))
    sleep = procs.Proc.of(int(pwsup.read_line()))
    assert pwsup.read_line() == "started"
    last_line = time.monotonic()
    assert pwsup.wait() == 0, pwsup.describe()
    assert exited_after(pwsup, last_line) < PROMPT, pwsup.describe()
    assert not sleep.alive(), f"sleep {sleep.pid} survived pwsup\n{pwsup.describe()}"


@pytest.mark.parametrize("where", ["--same-group", "--new-session"])
def test_leftover_is_terminated_before_pwsup_exits(start: Callable[..., Running],
                                                   where: str) -> None:
    """A grandchild left running (in the group or setsid()'d) is gone when pwsup exits."""
    pwsup = start(pwsup_cmd(python_cmd(LEAVE_DAEMONS, "1", "3", where)))
    [daemon], command = daemons_and_command(pwsup)
    last_line = time.monotonic()
    assert (procs.pgid_of(daemon.pid) == command) == (where == "--same-group")
    assert pwsup.wait() == 3, pwsup.describe()
    assert exited_after(pwsup, last_line) < PROMPT, pwsup.describe()
    assert not daemon.alive(), pwsup.describe()


@pytest.mark.parametrize("where", ["--same-group", "--new-session"])
def test_leftover_ignoring_sigterm_is_killed_after_the_grace_period(
        start: Callable[..., Running], where: str) -> None:
    """A leftover that ignores SIGTERM is SIGKILLed one grace period (1 s) later."""
    grace = 1.0
    pwsup = start(pwsup_cmd(python_cmd(LEAVE_DAEMONS, "1", "0", where, "--ignore-term"),
                            "--process-termination-grace-period", str(grace)))
    [daemon] = daemons_of(pwsup)
    exiting = float(pwsup.expect("exiting ").split()[1])  # stamped by the command itself
    assert pwsup.wait() == 0, pwsup.describe()
    waited = exited_after(pwsup, exiting)
    # The SIGKILL comes one grace period after the SIGTERM, which follows the command's
    # exit (0.1 s for timer granularity).
    assert grace - 0.1 <= waited < grace + SLACK, f"{waited:.3f} s\n{pwsup.describe()}"
    assert not daemon.alive(), pwsup.describe()


def test_every_daemon_of_a_daemonizing_command_is_gone_after_pwsup_exits(
        start: Callable[..., Running]) -> None:
    """A command that double-forks several daemons and exits leaves nothing running."""
    pwsup = start(pwsup_cmd(python_cmd(LEAVE_DAEMONS, "3", "0")))
    daemons = daemons_of(pwsup)
    assert len(daemons) == 3
    assert pwsup.wait() == 0, pwsup.describe()
    assert not [d.pid for d in daemons if d.alive()], pwsup.describe()
    assert live_descendants_of_this_test() == [], pwsup.describe()


@pytest.mark.parametrize("where", ["--same-group", "--new-session"])
def test_keep_descendants_leaves_leftovers_running(start: Callable[..., Running],
                                                   where: str) -> None:
    """With --keep-descendants, a leftover grandchild is still alive after pwsup exits."""
    pwsup = start(pwsup_cmd(python_cmd(LEAVE_DAEMONS, "1", "0", where), "--keep-descendants"))
    [daemon] = daemons_of(pwsup)
    last_line = time.monotonic()
    try:
        assert pwsup.wait() == 0, pwsup.describe()
        assert exited_after(pwsup, last_line) < PROMPT, pwsup.describe()
        assert daemon.alive(), f"the kept daemon is gone\n{pwsup.describe()}"
    finally:
        if daemon.alive():
            procs.kill_quietly(daemon.pid, signal.SIGKILL)
        procs.wait_for_exit([daemon], SLACK)
        procs.reap_zombie_children()


def test_keep_descendants_leaves_a_background_job_running(
        start: Callable[..., Running]) -> None:
    """`--keep-descendants -- sh -c 'sleep 30 & ...'`: the sleep outlives pwsup."""
    pwsup = start(pwsup_cmd(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
                            "--keep-descendants"))
    sleep = procs.Proc.of(int(pwsup.read_line()))
    try:
        assert pwsup.wait() == 0, pwsup.describe()
        assert sleep.alive(), pwsup.describe()
    finally:
        if sleep.alive():
            procs.kill_quietly(sleep.pid)
        procs.wait_for_exit([sleep], SLACK)
        procs.reap_zombie_children()


RETRY_AFTER_LEAVING_A_DAEMON = f"""
import os, sys, time
record = sys.argv[1]
if os.path.exists(record):  # attempt 2: is attempt 1's daemon still there?
    pid = open(record).read()
    try:
        state = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    print("previous", pid, state, flush=True)
    raise SystemExit(0)
read_end, write_end = os.pipe()
if os.fork() == 0:  # attempt 1: leave a setsid()'d daemon behind, then fail
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    with open(record, "w") as f:
        f.write(str(os.getpid()))
    os.close(write_end)
    time.sleep({CHILD_LIFETIME})
    os._exit(0)
os.close(write_end)
os.read(read_end, 1)  # EOF once the daemon has written its pid
raise SystemExit(1)
"""


def test_leftovers_of_an_attempt_are_gone_before_the_retry_starts(
        start: Callable[..., Running], tmp_path: Path) -> None:
    """Attempt 1's daemon is terminated before attempt 2 begins."""
    record = tmp_path / "daemon"
    pwsup = start(pwsup_cmd(python_cmd(RETRY_AFTER_LEAVING_A_DAEMON, str(record)),
                            "-r", "1", "--process-retry-delay", "0.1"))
    line = pwsup.expect("previous ")
    assert line.split()[-1] in ("gone", "Z"), f"attempt 1's daemon still ran: {line}"
    assert pwsup.wait() == 0, pwsup.describe()
