"""Per-attempt time limits (TERM to the group, grace, KILL) and retries, from the command
line and from the environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import print_signals_cmd, pwsup_cmd, python_cmd, run

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from helpers.runner import Running

COUNT_ATTEMPT = """
    import os, sys, time
    log, codes = sys.argv[1], [int(c) for c in sys.argv[2].split(",")]
    with open(log, "a") as f:
        f.write(f"{time.monotonic()}\\n")
    with open(log) as f:
        attempt = len(f.read().splitlines())
    print(f"attempt {attempt}", flush=True)
    raise SystemExit(codes[min(attempt, len(codes)) - 1])
    """
"""Child: appends the time to a log file, prints `attempt N`, and exits with the Nth code of
a comma-separated list (the last one repeats)."""


def attempt_times(log: Path) -> list[float]:
    return [float(t) for t in log.read_text().split()] if log.exists() else []


def counting_cmd(log: Path, codes: str) -> list[str]:
    return python_cmd(COUNT_ATTEMPT, str(log), codes)


def test_time_limit_terminates_the_whole_process_group(
        start: Callable[..., Running]) -> None:
    """On `-t` expiry, SIGTERM goes to the command and every member of its group at once."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork"), "-t", "0.5",
                            "--process-termination-grace-period", "1"))
    forked = pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    assert procs.pgid_of(forked.pid) == command.pid
    pwsup.expect("forked SIGTERM")
    # Both report SIGTERM and keep running: the member got it while the command was still
    # alive, so it came with the time limit's group signal, not with the leftover sweep.
    assert command.alive(), pwsup.describe()
    assert pwsup.wait() == 124, pwsup.describe()
    assert "SIGTERM" in pwsup.lines(), pwsup.describe()
    assert not forked.alive()
    assert not command.alive()


def test_time_limit_escalates_to_sigkill_after_the_grace_period(
        start: Callable[..., Running]) -> None:
    """A command that ignores the time limit's SIGTERM is SIGKILLed one grace period later."""
    limit, grace = 0.5, 1.0
    pwsup = start(pwsup_cmd(print_signals_cmd("--ignore", "SIGTERM"), "-t", str(limit),
                            "--process-termination-grace-period", str(grace)))
    command = pwsup.expect_ready()
    assert pwsup.wait() == 124, pwsup.describe()
    assert not command.alive()
    # The limit and the grace period, counted from when pwsup started the command (after
    # our clock started): never earlier than their sum.
    assert limit + grace <= pwsup.elapsed < limit + grace + SLACK, pwsup.describe()


def test_fractional_time_limit_is_honoured(env: dict[str, str]) -> None:
    """`-t 0.3` stops a 30 s command after about 0.3 s."""
    limit = 0.3
    result = run(pwsup_cmd(python_cmd("import time; time.sleep(30)"), "-t", str(limit)), env)
    assert result.returncode == 124, result
    # The command dies of the limit's SIGTERM at once: the limit, not the command's 30 s.
    assert limit <= result.elapsed < limit + SLACK, result


def test_failed_attempts_are_retried_up_to_the_limit(env: dict[str, str],
                                                     tmp_path: Path) -> None:
    """`-r 2` runs a failing command three times and exits with its code."""
    log = tmp_path / "attempts"
    result = run(pwsup_cmd(counting_cmd(log, "3"), "-r", "2", "--process-retry-delay", "0.1"),
                 env)
    assert result.returncode == 3, result
    assert len(attempt_times(log)) == 3, result
    assert result.stdout.splitlines() == ["attempt 1", "attempt 2", "attempt 3"], result


def test_retries_stop_at_the_first_success(env: dict[str, str], tmp_path: Path) -> None:
    """A command that fails twice and then succeeds runs three times; pwsup exits 0."""
    log = tmp_path / "attempts"
    result = run(pwsup_cmd(counting_cmd(log, "1,2,0,5"), "-r", "5",
                           "--process-retry-delay", "0.1"), env)
    assert result.returncode == 0, result
    assert len(attempt_times(log)) == 3, result


def test_exit_code_is_the_last_attempts(env: dict[str, str], tmp_path: Path) -> None:
    """With retries, pwsup exits with the last attempt's code, not the first's."""
    log = tmp_path / "attempts"
    result = run(pwsup_cmd(counting_cmd(log, "1,2,9"), "-r", "2",
                           "--process-retry-delay", "0.1"), env)
    assert result.returncode == 9, result


def test_successful_command_is_not_retried(env: dict[str, str], tmp_path: Path) -> None:
    """Exit 0 on the first attempt ends the run, whatever `-r` allows."""
    log = tmp_path / "attempts"
    result = run(pwsup_cmd(counting_cmd(log, "0"), "-r", "3", "--process-retry-delay", "0.1"),
                 env)
    assert result.returncode == 0, result
    assert len(attempt_times(log)) == 1, result


def test_retry_delay_separates_attempts(env: dict[str, str], tmp_path: Path) -> None:
    """Attempts start at least `--process-retry-delay` apart."""
    delay = 0.8
    log = tmp_path / "attempts"
    result = run(pwsup_cmd(counting_cmd(log, "1"), "-r", "1", "--process-retry-delay",
                           str(delay)), env)
    assert result.returncode == 1, result
    first, second = attempt_times(log)
    # The gap is the delay plus the second Python start-up.
    assert delay <= second - first < delay + SLACK, result


def test_every_timed_out_attempt_is_retried_and_the_run_exits_124(
        env: dict[str, str], tmp_path: Path) -> None:
    """Time-outs count as failures for retries; if the last attempt timed out, exit 124."""
    log = tmp_path / "attempts"
    code = COUNT_ATTEMPT.replace("raise SystemExit", "time.sleep(30); raise SystemExit")
    result = run(pwsup_cmd(python_cmd(code, str(log), "0"), "-t", "0.5", "-r", "1",
                           "--process-retry-delay", "0.1"), env)
    assert result.returncode == 124, result
    assert len(attempt_times(log)) == 2, result


def test_timed_out_attempt_followed_by_a_failure_exits_with_the_failure(
        env: dict[str, str], tmp_path: Path) -> None:
    """Attempt 1 times out, attempt 2 exits 5: pwsup exits 5 (the last attempt's outcome)."""
    log = tmp_path / "attempts"
    code = COUNT_ATTEMPT.replace(
        "raise SystemExit", "attempt == 1 and time.sleep(30); raise SystemExit")
    result = run(pwsup_cmd(python_cmd(code, str(log), "0,5"), "-t", "1", "-r", "1",
                           "--process-retry-delay", "0.1"), env)
    assert result.returncode == 5, result
    assert len(attempt_times(log)) == 2, result


@pytest.mark.parametrize("variable", ["PROC_WRAPPER_TASK_MAX_RETRIES",
                                      "PROC_WRAPPER_PROCESS_MAX_RETRIES"])
def test_retries_can_be_set_in_the_environment(env: dict[str, str], tmp_path: Path,
                                               variable: str) -> None:
    """Both environment spellings of the retry count work (with the env retry delay)."""
    log = tmp_path / "attempts"
    env.update({variable: "2", "PROC_WRAPPER_PROCESS_RETRY_DELAY_SECONDS": "0.1"})
    result = run(pwsup_cmd(counting_cmd(log, "4")), env)
    assert result.returncode == 4, result
    assert len(attempt_times(log)) == 3, result


def test_time_limit_and_grace_period_can_be_set_in_the_environment(
        start: Callable[..., Running], env: dict[str, str]) -> None:
    """PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS and ..._TERMINATION_GRACE_PERIOD_SECONDS work."""
    env.update({"PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS": "0.5",
                "PROC_WRAPPER_PROCESS_TERMINATION_GRACE_PERIOD_SECONDS": "0.5"})
    pwsup = start(pwsup_cmd(print_signals_cmd("--ignore", "SIGTERM")), env=env)
    pwsup.expect_ready()
    assert pwsup.wait() == 124, pwsup.describe()
    # 0.5 s + 0.5 s; the defaults would be no limit at all and a 30 s grace.
    assert 1.0 <= pwsup.elapsed < 1.0 + SLACK, pwsup.describe()


def test_environment_beats_the_command_line_for_retries(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    """PROC_WRAPPER_TASK_MAX_RETRIES=1 wins over `-r 5`: two attempts, not six."""
    log = tmp_path / "attempts"
    env.update({"PROC_WRAPPER_TASK_MAX_RETRIES": "1",
                "PROC_WRAPPER_PROCESS_RETRY_DELAY_SECONDS": "0.1"})
    result = run(pwsup_cmd(counting_cmd(log, "3"), "-r", "5", "--process-retry-delay", "0.1"),
                 env)
    assert result.returncode == 3, result
    assert len(attempt_times(log)) == 2, result


def test_environment_beats_the_command_line_for_the_time_limit(env: dict[str, str]) -> None:
    """PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS=0.5 wins over `-t 30`."""
    env["PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS"] = "0.5"
    result = run(pwsup_cmd(python_cmd("import time; time.sleep(30)"), "-t", "30"), env)
    assert result.returncode == 124, result
    assert result.elapsed < 0.5 + SLACK, result  # the command dies of the SIGTERM at once


def test_environment_beats_the_command_line_for_the_retry_delay(
        env: dict[str, str], tmp_path: Path) -> None:
    """PROC_WRAPPER_PROCESS_RETRY_DELAY_SECONDS=0.1 wins over `--process-retry-delay 60`."""
    log = tmp_path / "attempts"
    env["PROC_WRAPPER_PROCESS_RETRY_DELAY_SECONDS"] = "0.1"
    result = run(pwsup_cmd(counting_cmd(log, "1"), "-r", "1", "--process-retry-delay", "60"),
                 env)
    assert result.returncode == 1, result
    assert len(attempt_times(log)) == 2, result


def test_no_process_group_termination_signals_only_the_command(
        start: Callable[..., Running]) -> None:
    """With --no-process-group-termination the time limit's SIGTERM skips group members."""
    pwsup = start(pwsup_cmd(print_signals_cmd("--fork"), "-t", "0.5",
                            "--no-process-group-termination",
                            "--process-termination-grace-period", "1"))
    forked = pwsup.expect_ready("forked ready")
    command = pwsup.expect_ready()
    assert pwsup.read_line() == "SIGTERM", pwsup.describe()
    # The command ignores the SIGTERM until its SIGKILL one grace period later; only then,
    # as a leftover, may the group member get a SIGTERM.
    assert pwsup.read_line() == "forked SIGTERM", pwsup.describe()
    assert not command.alive(), (
        f"the group member got SIGTERM while the command still ran\n{pwsup.describe()}")
    assert pwsup.wait() == 124, pwsup.describe()
    assert not forked.alive()


LIVE_FROM_START = """
    import os, sys, time
    log, lifetime = sys.argv[1], float(sys.argv[2])
    with open("/proc/self/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    started = ticks / os.sysconf("SC_CLK_TCK")  # since boot, when pwsup forked this process
    with open(log, "a") as f:
        f.write(f"{time.monotonic()}\\n")
    with open(log) as f:
        attempt = len(f.read().splitlines())
    print(f"attempt {attempt}", flush=True)
    time.sleep(max(0.0, started + lifetime - time.clock_gettime(time.CLOCK_BOOTTIME)))
    raise SystemExit(2 if attempt == 1 else 0)
    """
"""Child: like COUNT_ATTEMPT (attempt 1 exits 2, then 0), but it ends argv[2] seconds after
its process began — counted as pwsup's time limit counts, from the fork, however long the
interpreter took to start."""


def test_time_limit_is_per_attempt(env: dict[str, str], tmp_path: Path) -> None:
    """Each attempt gets the whole `-t`: two 1.5 s attempts under `-t 2.5` both finish."""
    limit, lifetime = 2.5, 1.5  # two attempts together would overrun one limit
    log = tmp_path / "attempts"
    result = run(pwsup_cmd(python_cmd(LIVE_FROM_START, str(log), str(lifetime)),
                           "-t", str(limit), "-r", "1", "--process-retry-delay", "0.1"), env)
    assert result.returncode == 0, result
    assert len(attempt_times(log)) == 2, result


def test_time_limit_sigterm_is_not_sent_to_a_command_that_finished(env: dict[str, str]) -> None:
    """A command that exits before its limit is simply done: its own code, no 124."""
    limit = 30.0  # longer than any bound below: pwsup must not wait for it
    result = run(pwsup_cmd(python_cmd("raise SystemExit(3)"), "-t", str(limit)), env)
    assert result.returncode == 3, result
    assert result.elapsed < SLACK, result

