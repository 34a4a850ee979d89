"""A flood of signals never crashes pwsup nor slows its exit beyond the grace period.

The class: 1,000 SIGTERMs mixed with SIGHUP and SIGUSR1, sent as fast as the test can, to
pwsup while its command runs, while it escalates (the command ignores SIGTERM), and while
it delivers the final report. pwsup's handlers only write a byte to a pipe, so a flood can
only fill that pipe (its bytes are then dropped) and wake the loop: the exit comes with
the documented code within the grace period plus SLACK, stderr holds no traceback, and the
command saw the signals forwarded (at least one TERM, and HUP and USR1 too).
"""

from __future__ import annotations

import signal
import time

import pytest

from helpers.bounds import SLACK
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.fake_cloudreactor.faults import Hang
from helpers.runner import Running, clean_env, print_signals_cmd, pwsup_cmd, python_cmd

pytestmark = pytest.mark.hostile

FLOOD = 1000
GRACE = 2.0
"""The grace period of the escalation cases: what the flood must not extend."""
MIXED = (signal.SIGHUP, signal.SIGUSR1)
REPORT_CAP = 2.0
"""--shutdown-report-timeout of the final-report case, far below its other timeouts."""


def _flood(run: Running, count: int = FLOOD) -> None:
    """`count` SIGTERMs, each followed by a SIGHUP or SIGUSR1 in turn, back to back; a
    pwsup that exits mid-flood ends it (nothing is left to signal)."""
    for i in range(count):
        try:
            run.signal(signal.SIGTERM)
            run.signal(MIXED[i % 2])
        except ProcessLookupError:
            return


def _no_crash(run: Running) -> None:
    assert "Traceback" not in run.stderr, run.describe()
    assert "bad message" not in run.stderr, run.describe()


def test_a_flood_while_running_is_forwarded_and_ends_with_the_command() -> None:
    """The command reports every signal and exits 0 on the first SIGTERM it sees, after
    HUP and USR1 reached it too: pwsup exits 0 at once, not after the grace period."""
    command = print_signals_cmd("--exit-on", "SIGTERM=0")
    with Running(pwsup_cmd(command, "--process-termination-grace-period", "30"),
                 clean_env()) as run:
        run.expect_ready()
        # HUP and USR1 first, one of each, so the command is seen to get them.
        for signum in MIXED:
            run.signal(signum)
            assert run.read_line() == signal.Signals(signum).name
        sent = time.monotonic()
        _flood(run)
        assert run.wait() == 0, run.describe()
        assert run.exited_at is not None
        assert run.exited_at - sent < SLACK, run.describe()
        assert "SIGTERM" in run.lines()
    _no_crash(run)


def test_a_flood_during_escalation_ends_with_sigkill_after_one_grace_period() -> None:
    """The command ignores SIGTERM: SIGKILL comes at the end of the one grace period from
    the first SIGTERM (the flood neither restarts nor stretches it): 137."""
    command = print_signals_cmd("--ignore", "SIGTERM")
    with Running(pwsup_cmd(command, "--process-termination-grace-period", f"{GRACE:g}"),
                 clean_env()) as run:
        run.expect_ready()
        sent = time.monotonic()
        _flood(run)
        assert run.wait() == 137, run.describe()
        assert run.exited_at is not None
        assert GRACE - 0.1 <= run.exited_at - sent < GRACE + SLACK, run.describe()
        seen = set(run.lines())
        assert {"SIGHUP", "SIGUSR1"} <= seen, run.describe()
    _no_crash(run)


def test_a_flood_during_the_final_report_ends_the_wait_at_once() -> None:
    """The final update hangs; a flood of stop signals is one stop signal or several (the
    kernel merges those that arrive while one is pending): the wait for the report ends at
    once on a second one, or at the shutdown report timeout when they were all merged;
    either way the loss is logged and pwsup exits with the command's code."""
    with FakeCloudReactor() as api:
        api.create_task("flood-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        api.always("PATCH", Hang())
        command = python_cmd("import sys; print('ready', flush=True); sys.exit(3)")
        with Running(pwsup_cmd(command, "-n", "flood-task", "--api-heartbeat-interval", "600",
                               "--api-final-update-timeout", "60",
                               "--shutdown-report-timeout", f"{REPORT_CAP:g}"), env) as run:
            assert run.read_line() == "ready"
            api.wait_for(lambda r: r.method == "PATCH" and r.behaviour == "Hang")
            sent = time.monotonic()
            _flood(run)
            assert run.wait() == 3, run.describe()
            assert run.exited_at is not None
            assert run.exited_at - sent < REPORT_CAP + SLACK, run.describe()
            assert "the final status could not be delivered" in run.stderr
        _no_crash(run)
