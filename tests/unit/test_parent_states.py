"""The parent's decisions between attempts, driven without processes: after an attempt
ends (or a stop signal arrives), which phase comes next and with what exit code."""

from __future__ import annotations

import signal

import pytest

from pwsup.config.loader import load
from pwsup.supervisor.parent import Supervisor
from pwsup.supervisor.state import Attempt, Phase
from pwsup.util.log import Log


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def supervisor(*argv: str) -> tuple[Supervisor, FakeClock]:
    loaded = load([*argv, "--", "true"], {})
    assert loaded.params is not None, loaded.errors
    quiet = Log("test", level=100)  # above CRITICAL: writes nothing
    sup = Supervisor(loaded.params, loaded.argv, quiet, {})
    clock = FakeClock()
    sup.deadlines.clock = clock
    sup.phase = Phase.RUNNING
    return sup, clock


def ended(sup: Supervisor, exit_code: int, *, timed_out: bool = False) -> None:
    """Pretend attempt N just ended (and nothing was left behind)."""
    sup.attempts += 1
    sup.attempt = Attempt(sup.attempts, 0, exit_code=exit_code)
    sup.attempt.timed_out = timed_out
    sup.runner.over()


def test_success_finishes_with_zero() -> None:
    """Exit 0 ends the run at once."""
    sup, _ = supervisor()
    ended(sup, 0)
    assert (sup.phase, sup.exit_code) == (Phase.DONE, 0)


def test_failure_with_retries_waits_then_gives_the_last_code() -> None:
    """A failure with retries left waits the retry delay; the last failure is the result."""
    sup, _clock = supervisor("-r", "1", "--process-retry-delay", "7")
    ended(sup, 3)
    assert sup.phase is Phase.WAITING
    assert sup.failed_attempts == 1
    assert sup.deadlines.next_timeout() == 7
    ended(sup, 4)
    assert (sup.phase, sup.exit_code, sup.failed_attempts) == (Phase.DONE, 4, 2)


def test_last_attempt_timing_out_exits_124() -> None:
    """A time-limited last attempt is 124, whatever the command died of."""
    sup, _ = supervisor("-t", "1")
    ended(sup, 143, timed_out=True)
    assert (sup.exit_code, sup.timed_out_attempts) == (124, 1)


def test_unlimited_retries_keep_waiting() -> None:
    """-r -1 never runs out of attempts."""
    sup, _ = supervisor("-r", "-1", "--process-retry-delay", "0")
    for _ in range(50):
        ended(sup, 1)
        assert sup.phase is Phase.WAITING


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_stop_signal_while_waiting_ends_with_the_last_code(signum: int) -> None:
    """Told to stop between attempts: no retry; the last attempt's code is the result."""
    sup, _ = supervisor("-r", "3", "--process-retry-delay", "60")
    ended(sup, 5)
    sup._stop(signum)
    assert (sup.phase, sup.exit_code) == (Phase.DONE, 5)


def test_stop_signal_before_start_is_128_plus_n() -> None:
    """Told to stop before anything ran: 128+N."""
    sup, _ = supervisor()
    sup.phase = Phase.STARTING
    sup._stop(signal.SIGTERM)
    assert (sup.phase, sup.exit_code) == (Phase.DONE, 143)


def test_stop_signal_means_no_retry_after_the_attempt_ends() -> None:
    """After a stop signal the attempt's end finishes the run, even with retries left."""
    sup, _ = supervisor("-r", "3")
    sup._stop(signal.SIGTERM)
    ended(sup, 143)
    assert (sup.phase, sup.exit_code) == (Phase.DONE, 143)
    assert sup.failed_attempts == 0  # an aborted attempt is not a failure


def test_remote_stop_exits_75() -> None:
    """The server stopping the execution ends the run with 75."""
    sup, _ = supervisor("-r", "3")
    sup.server_stop = "stopped"
    ended(sup, 143)
    assert (sup.phase, sup.exit_code) == (Phase.DONE, 75)
