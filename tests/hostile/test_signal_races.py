"""A stop signal racing a change of state has one documented outcome (docs/exit-codes.md).

The class: SIGTERM arriving while pwsup is between two states — during a time limit's
grace period, during a retry delay (after a failed attempt, and after a timed-out one),
while the secrets are being resolved, and before the server answered the start request.
Each case asserts the exit code, what the server was told, that the command did or did
not start, and that nothing is left (the conftest checks the process tree as well).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.fake_cloudreactor.faults import Hang, Slow
from helpers.held_aws import SECRET_ARN, HeldAws
from helpers.runner import Running, clean_env, print_signals_cmd, pwsup_cmd, python_cmd

pytestmark = pytest.mark.hostile

TASK_EXECUTIONS_PATH = "/api/v1/task_executions/"
LONG = 30.0
"""A delay pwsup must not wait out (a retry delay, a grace period): far above SLACK."""


def _online(api: FakeCloudReactor) -> dict[str, str]:
    api.create_task("race-task")
    return clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                      "PROC_WRAPPER_API_KEY": api.api_key})


REPORTING = ("-n", "race-task", "--api-final-update-timeout", "5")


def test_sigterm_in_the_time_limit_grace_period_ends_124_without_a_retry() -> None:
    """The time limit decided the attempt; the stop rules out the retry: exit 124,
    TERMINATED_AFTER_TIME_OUT, one attempt, SIGKILL at the time limit's own deadline."""
    with FakeCloudReactor() as api:
        env = _online(api)
        command = print_signals_cmd("--ignore", "SIGINT")
        with Running(pwsup_cmd(command, *REPORTING, "-t", "1", "-r", "3",
                               "--process-termination-grace-period", "2"), env) as run:
            run.expect_ready()
            assert run.read_line() == "SIGTERM"  # the time limit's
            run.signal(signal.SIGTERM)
            assert run.read_line() == "SIGTERM"  # forwarded
            assert run.wait() == 124, run.describe()
            assert not any(line.startswith("ready") for line in run.lines()[1:])
        (execution,) = api.executions.values()
    assert execution["status"] == "TERMINATED_AFTER_TIME_OUT", execution


FAIL = "import sys; print('ready', flush=True); sys.exit(3)"


@pytest.mark.parametrize("timed_out", [False, True], ids=["failed", "timed-out"])
def test_sigterm_in_a_retry_delay_ends_with_the_last_attempts_status(timed_out: bool) -> None:
    """No retry, no waiting out the delay: the last attempt's status (3; 124 when it timed
    out), ABORTED on the server."""
    with FakeCloudReactor() as api:
        env = _online(api)
        if timed_out:
            command = python_cmd("import time; print('ready', flush=True); time.sleep(30)")
            timing = ["-t", "0.5"]
        else:
            command, timing = python_cmd(FAIL), []
        with Running(pwsup_cmd(command, *REPORTING, *timing, "-r", "3",
                               "--process-retry-delay", f"{LONG:g}"), env) as run:
            assert run.read_line() == "ready"
            run.expect(lambda line: "retrying in" in line, stream="err")
            sent = time.monotonic()
            run.signal(signal.SIGTERM)
            assert run.wait() == (124 if timed_out else 3), run.describe()
            assert run.exited_at is not None
            assert run.exited_at - sent < SLACK, run.describe()
            assert run.lines() == ["ready"], "no second attempt"
        (execution,) = api.executions.values()
    assert execution["status"] == "ABORTED", execution


def test_sigterm_while_resolving_secrets_kills_the_resolver_and_exits_143() -> None:
    """The resolver is killed and reaped at once (the documented 100 ms, plus SLACK for a
    busy machine); the command never starts; exit 143, not death by the signal."""
    aws = HeldAws("X=1\n")
    try:
        env = clean_env(aws.env())
        with Running(pwsup_cmd(python_cmd("print('ready', flush=True)"),
                               "--env", SECRET_ARN), env) as run:
            aws.wait_held(timeout=SLACK * 2)
            (resolver,) = [procs.Proc.of(pid) for pid in procs.children(run.pid)]
            sent = time.monotonic()
            run.signal(signal.SIGTERM)
            assert run.wait() == 143, run.describe()
            assert run.exited_at is not None
            assert run.exited_at - sent < 0.1 + SLACK, run.describe()
            assert not resolver.alive()
            # The test process is a child subreaper: a resolver pwsup did not reap would be
            # its child now.
            assert resolver.pid not in procs.children(os.getpid()), "not reaped by pwsup"
            assert "ready" not in run.lines()
            assert "received SIGTERM while resolving secrets" in run.stderr
    finally:
        aws.close()


def test_sigterm_before_the_server_answered_the_start_request_exits_143() -> None:
    """The start request hangs: the command never starts; pwsup exits 143 within the
    shutdown report timeout, and the server holds no execution it would keep RUNNING."""
    with FakeCloudReactor() as api:
        env = _online(api)
        api.always("POST", Hang(), path=TASK_EXECUTIONS_PATH)
        with Running(pwsup_cmd(python_cmd("print('ready', flush=True)"), *REPORTING,
                               "--shutdown-report-timeout", "1",
                               "--api-task-execution-creation-error-timeout", f"{LONG:g}"),
                     env) as run:
            api.wait_for(lambda r: r.method == "POST" and r.path == TASK_EXECUTIONS_PATH)
            sent = time.monotonic()
            run.signal(signal.SIGTERM)
            assert run.wait() == 143, run.describe()
            assert run.exited_at is not None
            assert run.exited_at - sent < 1 + SLACK, run.describe()
            assert "ready" not in run.lines()
        assert api.executions == {}


def test_sigterm_before_a_slow_start_answer_is_reported_aborted() -> None:
    """The start request is answered after the SIGTERM: the execution is created and then
    ABORTED, still exit 143, and the command never starts."""
    with FakeCloudReactor() as api:
        env = _online(api)
        api.script("POST", TASK_EXECUTIONS_PATH, Slow(0.5))
        with Running(pwsup_cmd(python_cmd("print('ready', flush=True)"), *REPORTING,
                               "--shutdown-report-timeout", f"{LONG:g}"), env) as run:
            api.wait_for(lambda r: r.method == "POST" and r.path == TASK_EXECUTIONS_PATH)
            run.signal(signal.SIGTERM)
            assert run.wait() == 143, run.describe()
            assert "ready" not in run.lines()
        (execution,) = api.executions.values()
    assert execution["status"] == "ABORTED", execution
