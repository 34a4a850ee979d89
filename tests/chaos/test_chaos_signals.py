"""Signal storms, a command killed or stopped from outside, and a broken stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import PWSUP, print_signals_cmd, pwsup_cmd, python_cmd
from helpers.scripts import LEAVE_DAEMONS

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.runner import Running

pytestmark = pytest.mark.chaos

STORM = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGHUP, signal.SIGCHLD]


def test_signal_storm_leaves_pwsup_working(start: Callable[..., Running]) -> None:
    """A burst of 500 signals (incl. spurious SIGCHLDs) leaves pwsup and the command working."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--exit-on", "SIGTERM=0")))
    command = pwsup.expect_ready()
    for i in range(500):
        pwsup.signal(STORM[i % len(STORM)])
    # Standard signals coalesce, so not every one arrives; each kind must arrive once.
    expected = {s.name for s in STORM if s is not signal.SIGCHLD}
    seen: set[str] = set()
    while not expected <= seen:
        seen.add(pwsup.read_line())
    assert command.alive(), pwsup.describe()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 0, pwsup.describe()
    assert pwsup.lines()[-1] == "SIGTERM", pwsup.describe()


def test_burst_of_sigterms_still_ends_with_the_grace_period_sigkill(
        start: Callable[..., Running]) -> None:
    """50 SIGTERMs at once on a command that ignores them: SIGKILL after the one grace."""
    grace = 1.0
    pwsup = start(pwsup_cmd(print_signals_cmd("--ignore", "SIGTERM"),
                            "--process-termination-grace-period", str(grace)))
    pwsup.expect_ready()
    first = time.monotonic()
    for _ in range(50):
        pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 137, pwsup.describe()
    assert pwsup.exited_at is not None
    # One grace period from the first SIGTERM (0.1 s for timer granularity); the burst
    # neither skips it nor keeps it from ending.
    assert grace - 0.1 <= pwsup.exited_at - first < grace + SLACK, pwsup.describe()


def test_command_sigkilled_from_outside_makes_pwsup_exit_137_at_once(
        start: Callable[..., Running]) -> None:
    """Someone else SIGKILLs the command: pwsup notices at once and exits 137."""
    pwsup = start(pwsup_cmd(print_signals_cmd()))
    command = pwsup.expect_ready()
    killed = time.monotonic()
    os.kill(command.pid, signal.SIGKILL)
    assert pwsup.wait() == 137, pwsup.describe()
    assert pwsup.exited_at is not None
    # The exit is an event (a pidfd): nothing documented may delay noticing it.
    assert pwsup.exited_at - killed < SLACK, pwsup.describe()


def test_stopped_command_is_waited_for_not_mistaken_for_an_exit(
        start: Callable[..., Running]) -> None:
    """SIGSTOP on the command does not end the run; after SIGCONT it finishes normally."""
    code = """
        import os, sys
        print("ready", os.getpid(), flush=True)
        line = sys.stdin.readline()
        print("got", line.strip(), flush=True)
        raise SystemExit(6)
        """
    pwsup = start(pwsup_cmd(python_cmd(code)), stdin=subprocess.PIPE)
    command = pwsup.expect_ready()
    os.kill(command.pid, signal.SIGSTOP)
    procs.wait_until(lambda: procs.state(command.pid) == "T", SLACK, "the command to stop")
    # Nothing must happen while it is stopped. What is checked is an absence, so it is
    # watched for a while: a pwsup that took the stop for an exit would be gone (and the
    # command's "got hello" below would never come).
    assert not procs.exits_within(procs.Proc.of(pwsup.pid), 0.5), pwsup.describe()
    pwsup.write("hello\n")
    os.kill(command.pid, signal.SIGCONT)
    assert pwsup.read_line() == "got hello", pwsup.describe()
    assert pwsup.wait() == 6, pwsup.describe()


def test_closed_stderr_does_not_stop_pwsup_from_supervising(env: dict[str, str]) -> None:
    """With stderr unread (EPIPE), pwsup still cleans up and passes the exit code on."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with subprocess.Popen(
                pwsup_cmd(python_cmd(LEAVE_DAEMONS, "1", "5", "--same-group")),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=write_end,
                env=env) as proc:
            out, _ = proc.communicate(timeout=10)
    finally:
        os.close(write_end)
    assert proc.returncode == 5, out
    daemon = int(out.split()[1])
    assert not procs.alive(daemon), "the leftover survived"


def test_stop_signal_arriving_as_the_command_exits_is_handled(
        start: Callable[..., Running]) -> None:
    """A SIGTERM racing the command's own exit ends in a clean, prompt exit (9 or 143)."""
    for _ in range(5):
        # With the default grace period (30 s): "prompt" means pwsup does not wait it out.
        pwsup = start(pwsup_cmd(["sh", "-c", "echo ready; exit 9"]))
        pwsup.expect("ready")
        pwsup.signal(signal.SIGTERM)
        code = pwsup.wait(timeout=SLACK)
        assert code in (9, 143), pwsup.describe()
        pwsup.close()


def test_pwsup_started_with_stdin_closed_runs_the_command_with_stdin_closed(
        env: dict[str, str]) -> None:
    """With fd 0 closed, the command runs with fd 0 closed (not a pwsup pipe)."""
    code = """
        import os
        try:
            print("fd0", os.readlink("/proc/self/fd/0"))
        except OSError:
            print("fd0 closed")
        """
    # `<&-` closes fd 0 before exec'ing pwsup.
    argv = ["sh", "-c", 'exec "$@" <&-', "sh", PWSUP, "--", *python_cmd(code)]
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env) as proc:
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.decode().strip() == "fd0 closed", err
