"""Signals sent to pwsup: forwarded to the command's group; TERM/INT/QUIT also stop the run,
with SIGKILL after the grace period for a command that does not exit."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import clean_env, print_signals_cmd, pwsup_cmd, python_cmd, run

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.runner import Running

FORWARDED_ONLY = [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH]
STOPPING = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT]


def _name(value: object) -> str:
    return value.name if isinstance(value, signal.Signals) else str(value)


@pytest.mark.parametrize("signum", FORWARDED_ONLY, ids=_name)
def test_signal_is_forwarded_to_every_member_of_the_group_and_the_run_goes_on(
        start: Callable[..., Running], signum: signal.Signals) -> None:
    """HUP, USR1, USR2 and WINCH reach the command and its group; the command keeps going."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork", "--exit-on", "SIGTERM=0")))
    pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    pwsup.signal(signum)
    received = {pwsup.read_line(), pwsup.read_line()}
    assert received == {signum.name, f"forked {signum.name}"}, pwsup.describe()
    assert command.alive(), "a forwarded-only signal must not stop the command"
    pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 0, pwsup.describe()


@pytest.mark.parametrize("signum", STOPPING, ids=_name)
def test_stopping_signal_is_forwarded_and_pwsup_exits_with_the_commands_code(
        start: Callable[..., Running], signum: signal.Signals) -> None:
    """TERM, INT and QUIT reach the command's group; pwsup exits with what the command did."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork", "--exit-on", f"{signum.name}=0"),
                            "-r", "3", "--process-retry-delay", "0.1"))
    pwsup.expect_ready("forked ready")
    pwsup.expect_ready()
    pwsup.signal(signum)
    assert pwsup.wait() == 0, pwsup.describe()
    lines = pwsup.lines()
    assert signum.name in lines, pwsup.describe()
    assert f"forked {signum.name}" in lines, pwsup.describe()
    ready = [line for line in lines if line.startswith("ready ")]
    assert len(ready) == 1, f"a stopped run is not retried\n{pwsup.describe()}"


@pytest.mark.parametrize(("signum", "expected"), [
    (signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGQUIT, 131),
], ids=_name)
def test_command_killed_by_the_forwarded_signal_makes_pwsup_exit_128_plus_n(
        start: Callable[..., Running], signum: signal.Signals, expected: int) -> None:
    """A command that dies of the forwarded TERM/INT/QUIT makes pwsup exit 128+N, at once."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--default", signum.name)))
    pwsup.expect_ready()
    sent = time.monotonic()
    pwsup.signal(signum)
    assert pwsup.wait() == expected, pwsup.describe()
    # The default grace period is 30 s; a command that dies at once must not wait for it,
    # and nothing else documented delays the exit.
    assert pwsup.exited_at is not None
    assert pwsup.exited_at - sent < SLACK, pwsup.describe()


def test_stopping_signal_ends_the_run_without_retries(start: Callable[..., Running]) -> None:
    """After a SIGTERM, a command that exits non-zero is not retried despite `-r`."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--exit-on", "SIGTERM=3"),
                            "-r", "5", "--process-retry-delay", "0.1"))
    pwsup.expect_ready()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 3, pwsup.describe()
    ready = [line for line in pwsup.lines() if line.startswith("ready ")]
    assert len(ready) == 1, f"a stopped run is not retried\n{pwsup.describe()}"


def test_sigterm_while_waiting_to_retry_exits_with_the_last_attempts_code(
        start: Callable[..., Running]) -> None:
    """A SIGTERM during the retry delay ends the run at once with the last attempt's code."""
    pwsup = start(pwsup_cmd(["sh", "-c", "exit 4"], "-r", "5", "--process-retry-delay", "30"))
    pwsup.expect(lambda line: "retrying" in line, stream="err")
    sent = time.monotonic()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 4, pwsup.describe()
    assert pwsup.exited_at is not None
    # The retry was 30 s away; the stop must not wait for it.
    assert pwsup.exited_at - sent < SLACK, pwsup.describe()


def test_command_ignoring_sigterm_is_killed_after_the_grace_period(
        start: Callable[..., Running]) -> None:
    """With grace 1 s, a command that ignores the forwarded SIGTERM gets SIGKILL at ~1 s."""
    grace = 1.0
    pwsup = start(pwsup_cmd(print_signals_cmd("--ignore", "SIGTERM"),
                            "--process-termination-grace-period", str(grace)))
    command = pwsup.expect_ready()
    sent = time.monotonic()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 137, pwsup.describe()
    assert pwsup.exited_at is not None
    waited = pwsup.exited_at - sent
    # Not before the grace period (0.1 s for timer granularity); a grace that never fired
    # would leave the command running for good.
    assert grace - 0.1 <= waited < grace + SLACK, (
        f"exit {waited:.3f} s after SIGTERM\n{pwsup.describe()}")
    assert not command.alive()


def test_second_sigterm_does_not_skip_or_restart_the_grace_period(
        start: Callable[..., Running]) -> None:
    """A second SIGTERM is forwarded too, but the SIGKILL still comes one grace after the first."""
    grace = 1.5
    pwsup = start(pwsup_cmd(print_signals_cmd(), "--process-termination-grace-period",
                            str(grace)))
    pwsup.expect_ready()
    first = time.monotonic()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.read_line() == "SIGTERM", pwsup.describe()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.read_line() == "SIGTERM", pwsup.describe()
    assert pwsup.wait() == 137, pwsup.describe()
    assert pwsup.exited_at is not None
    waited = pwsup.exited_at - first
    # SIGKILL one grace period after the first SIGTERM: not at once (the second TERM does
    # not skip the grace; 0.1 s for timer granularity), and it does come.
    assert grace - 0.1 <= waited < grace + SLACK, (
        f"exit {waited:.3f} s after the first SIGTERM\n{pwsup.describe()}")


def test_sigint_then_sigterm_keeps_the_first_grace_period(
        start: Callable[..., Running]) -> None:
    """INT starts the stop; a later TERM is forwarded and does not change the outcome."""
    pwsup = start(pwsup_cmd(print_signals_cmd(), "--process-termination-grace-period", "1"))
    command = pwsup.expect_ready()
    pwsup.signal(signal.SIGINT)
    assert pwsup.read_line() == "SIGINT", pwsup.describe()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.read_line() == "SIGTERM", pwsup.describe()
    assert pwsup.wait() == 137, pwsup.describe()
    assert not command.alive()


def test_forwarded_signals_arrive_in_order(start: Callable[..., Running]) -> None:
    """USR1, USR2, HUP sent one after the other (each awaited) arrive in that order."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--exit-on", "SIGTERM")))
    pwsup.expect_ready()
    for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGUSR1):
        pwsup.signal(signum)
        assert pwsup.read_line() == signum.name, pwsup.describe()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 0, pwsup.describe()


def test_group_member_ignoring_sigterm_is_killed_when_the_run_is_stopped(
        start: Callable[..., Running]) -> None:
    """Stopping the run also ends group members that ignore SIGTERM (SIGKILL after grace)."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork", "--ignore", "SIGTERM"),
                            "--process-termination-grace-period", "0.5"))
    forked = pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    pwsup.signal(signal.SIGTERM)
    assert pwsup.wait() == 137, pwsup.describe()
    assert not command.alive()
    assert not forked.alive()
    assert procs.pid_tree(pwsup.pid) == []


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM], ids=_name)
def test_no_process_group_termination_forwards_to_the_command_only(
        start: Callable[..., Running], signum: signal.Signals) -> None:
    """With --no-process-group-termination, a forwarded signal reaches only the command."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork", "--exit-on", "SIGUSR2=0"),
                            "--no-process-group-termination",
                            "--process-termination-grace-period", "0.5"))
    forked = pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    pwsup.signal(signum)
    assert pwsup.read_line() == signum.name, pwsup.describe()
    if signum == signal.SIGTERM:
        # The command reports SIGTERM and runs on until the SIGKILL at the 0.5 s grace;
        # only after that may the member, now a leftover, get a SIGTERM of its own.
        assert pwsup.read_line() == "forked SIGTERM", pwsup.describe()
        assert not command.alive(), f"the member got the forwarded SIGTERM\n{pwsup.describe()}"
        assert pwsup.wait() == 137, pwsup.describe()
    else:
        pwsup.signal(signal.SIGUSR2)  # the command exits; the member is a leftover
        assert pwsup.wait() == 0, pwsup.describe()
        assert f"forked {signum.name}" not in pwsup.lines(), pwsup.describe()
    assert not forked.alive()


CTRL_C_WHILE_LOADING = """
    import os, signal
    from pwsup import cli
    from pwsup.config import loader

    def load(*args):  # the Ctrl-C lands while the options are being read
        os.kill(os.getpid(), signal.SIGINT)
        return real_load(*args)

    real_load, loader.load = loader.load, load
    cli.main(["--", "true"])
    """


def test_ctrl_c_before_the_supervisor_starts_ends_pwsup_quietly() -> None:
    """A Ctrl-C while pwsup still reads its options ends it as it ends any program (killed
    by SIGINT: 130 to a shell), not with a KeyboardInterrupt traceback."""
    result = run(python_cmd(CTRL_C_WHILE_LOADING), clean_env())
    assert result.returncode == -signal.SIGINT, result
    assert result.stderr == "", result
