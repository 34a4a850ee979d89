"""A hung API server never delays process control.

The fake server creates the execution normally, then hangs every PATCH (heartbeats and the
final update) — or hangs everything, creation included. pwsup must still forward SIGTERM at
once, enforce time limits on time, notice the command's exit at once, replace a killed
reporter, and exit within its own report deadlines (proc_wrapper blocked on all of these,
since it sent its requests from the process that supervised the command).

Times are measured on the monotonic clock, which is system-wide on Linux: the command
prints `time.monotonic()` at the moments that matter, and the test compares them with its
own readings and with the fake's request timestamps. What is asserted is an order — the
signal reached the command, or pwsup exited, while a request still hung (a hung request
lasts REQUEST_TIMEOUT) — or a documented deadline plus SLACK (helpers/bounds.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, SLACK
from helpers.fake_cloudreactor import (
    TASK_EXECUTION_PATH,
    TASK_EXECUTIONS_PATH,
    FakeCloudReactor,
    Hang,
    RecordedRequest,
    Reset,
    Respond,
)
from helpers.runner import clean_env

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from helpers.runner import Running

pytestmark = pytest.mark.chaos

PWSUP = str(Path(sys.executable).parent / "pwsup")
TASK = "hung-api-task"
GRACE = 1.0
SHUTDOWN_REPORT = 1.0
HEARTBEAT = 0.3
REQUEST_TIMEOUT = 30.0
"""How long a hung request lasts: longer than any bound asserted here, so a pwsup that
waited for one would fail the assertion."""
API_DEADLINE = 60.0
OPTIONS = (
    "--api-heartbeat-interval", str(HEARTBEAT),
    "--api-retry-delay", "0.2",
    "--api-request-timeout", f"{REQUEST_TIMEOUT:g}",
    "--api-error-timeout", f"{API_DEADLINE:g}",
    "--api-final-update-timeout", f"{API_DEADLINE:g}",
    "--api-task-execution-creation-error-timeout", f"{API_DEADLINE:g}",
    "--shutdown-report-timeout", str(SHUTDOWN_REPORT),
    "--process-termination-grace-period", str(GRACE),
    "--process-retry-delay", "0.2",
)
"""A hung request stays hung for the whole test, unless a test sets a shorter deadline on
purpose."""
WAIT = GRACE + SHUTDOWN_REPORT + SLACK
"""Longest wait for pwsup's exit: no run here may wait for more than a grace period and its
report deadline."""

STAMPED = """
    import os, signal, sys, time
    def on_term(signum, frame):
        os.write(1, f"SIGTERM {time.monotonic()}\\n".encode())
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    with open("/proc/self/stat") as f:  # when pwsup forked this process, on the monotonic clock
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    since_fork = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    os.write(1, f"start {time.monotonic() - since_fork} {os.getpid()}\\n".encode())
    if sys.argv[1] == "stdin":
        sys.stdin.readline()
        os.write(1, f"exiting {time.monotonic()}\\n".encode())
        raise SystemExit(int(sys.argv[2]))
    end = time.monotonic() + 30
    while time.monotonic() < end:
        time.sleep(0.05)
    """
"""Child: prints `start <monotonic> <pid>` first thing, the time being when pwsup forked it
(however long its interpreter then took to start). On SIGTERM it prints
`SIGTERM <monotonic>` and exits 0. With argv[1] "stdin" it exits with argv[2] once a line
arrives on stdin (after printing `exiting <monotonic>`); with "loop" it runs for 30 s."""


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with FakeCloudReactor() as fake:
        fake.create_task(TASK)
        yield fake


def hang_after_creation(api: FakeCloudReactor) -> None:
    """Creation succeeds; every PATCH (heartbeat, final update) hangs until released."""
    api.always("PATCH", Hang(), path=TASK_EXECUTION_PATH)


def start_pwsup(start: Callable[..., Running], api: FakeCloudReactor, mode: str,
                *options: str, exit_code: int = 0) -> Running:
    command = [sys.executable, "-c", textwrap.dedent(STAMPED), mode, str(exit_code)]
    env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                     "PROC_WRAPPER_API_KEY": api.api_key})
    return start([PWSUP, "-n", TASK, *OPTIONS, *options, "--", *command], env=env,
                 stdin=subprocess.PIPE)


def started(run: Running) -> tuple[float, procs.Proc]:
    """(monotonic time pwsup forked the command, the command's process)."""
    line = run.expect("start ")
    _, stamp, pid = line.split()
    return float(stamp), procs.Proc.of(int(pid))


def stamp(run: Running, prefix: str) -> float:
    return float(run.expect(f"{prefix} ").split()[-1])


def hung_heartbeat(api: FakeCloudReactor) -> RecordedRequest:
    """The first heartbeat that hangs, once the fake server has it."""
    return api.wait_for(is_hung_heartbeat, timeout=EVENT_TIMEOUT)


def still_hung(hung: RecordedRequest, at: float) -> bool:
    """Whether the request `hung` was still hanging at monotonic time `at`: nothing could
    have ended it yet (its client gives up only after REQUEST_TIMEOUT)."""
    return at < hung.timestamp + REQUEST_TIMEOUT


def is_hung_heartbeat(r: RecordedRequest) -> bool:
    return r.method == "PATCH" and r.behaviour == "Hang" and r.get("status") == "RUNNING"


def steps(api: FakeCloudReactor) -> list[tuple[str, Any, int | None]]:
    return [(r.method, r.get("status"), r.response_status) for r in api.requests]


def reporters(pwsup_pid: int) -> list[procs.Proc]:
    """pwsup's live child processes titled "pwsup reporter..." (not the command)."""
    return [procs.Proc.of(pid) for pid in procs.children(pwsup_pid)
            if procs.alive(pid) and (procs.cmdline(pid) or "").startswith("pwsup reporter")]


def wait_for_reporter(pwsup_pid: int, exclude: Sequence[procs.Proc] = (),
                      timeout: float = SLACK) -> procs.Proc:
    found: list[procs.Proc] = []

    def one_new() -> bool:
        found[:] = [p for p in reporters(pwsup_pid) if p not in exclude]
        return len(found) == 1

    procs.wait_until(one_new, timeout, "a (new) pwsup reporter process")
    return found[0]


# -- a. SIGTERM reaches the command at once ------------------------------------------------


def test_sigterm_is_forwarded_at_once_while_heartbeats_hang(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """With a heartbeat hanging, SIGTERM to pwsup reaches the command while the heartbeat
    still hangs, and pwsup exits within --shutdown-report-timeout although the final update
    hangs too."""
    hang_after_creation(api)
    run = start_pwsup(start, api, "loop")
    _, command = started(run)
    hung = hung_heartbeat(api)
    killed = time.monotonic()
    run.signal(signal.SIGTERM)
    received = stamp(run, "SIGTERM")
    assert still_hung(hung, received), "SIGTERM waited for the hung heartbeat"
    assert received - killed < SLACK, f"SIGTERM reached the command after {received - killed:.3f} s"
    assert run.wait(WAIT) == 0, run.describe()  # the command handled it and exited 0
    assert still_hung(hung, run.exited_at), "pwsup waited for the hung heartbeat"  # type: ignore[arg-type]
    # The command exits at once, so no grace period: only the report deadline remains.
    took = run.exited_at - killed  # type: ignore[operator]
    assert took < SHUTDOWN_REPORT + SLACK, f"pwsup exited {took:.3f} s after SIGTERM"
    assert not command.alive()
    sequence = steps(api)
    assert sequence[0] == ("POST", "RUNNING", 201)
    assert ("PATCH", "ABORTED", None) in sequence, sequence  # attempted, and it hung
    assert set(sequence[1:]) <= {("PATCH", "RUNNING", None), ("PATCH", "ABORTED", None)}
    assert api.violations == []


def test_sigterm_while_creation_hangs_exits_without_starting_the_command(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path) -> None:
    """Everything hangs, creation included: SIGTERM ends pwsup within
    --shutdown-report-timeout, with 143, and the command never started."""
    api.always(None, Hang())
    run = start_pwsup(start, api, "loop")
    post = api.wait_for(lambda r: r.method == "POST", timeout=EVENT_TIMEOUT)
    killed = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait(WAIT) == 128 + signal.SIGTERM, run.describe()
    assert still_hung(post, run.exited_at), "pwsup waited for the hung start request"  # type: ignore[arg-type]
    took = run.exited_at - killed  # type: ignore[operator]
    assert took < SHUTDOWN_REPORT + SLACK, f"pwsup exited {took:.3f} s after SIGTERM"
    assert not any(line.startswith("start ") for line in run.lines()), run.describe()
    assert steps(api) == [("POST", "RUNNING", None)]
    assert api.violations == []


# -- b. time limits are enforced on time ------------------------------------------------------


def test_time_limit_fires_on_time_while_heartbeats_hang(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`-t 1` with every heartbeat hanging: SIGTERM comes 1 s after the command started,
    while the heartbeat still hangs, and pwsup exits 124 once the 1 s final update timeout
    has passed."""
    limit = final_timeout = 1.0
    hang_after_creation(api)
    run = start_pwsup(start, api, "loop", "-t", f"{limit:g}",
                      "--api-final-update-timeout", f"{final_timeout:g}")
    began, command = started(run)
    hung = hung_heartbeat(api)
    received = stamp(run, "SIGTERM")
    assert still_hung(hung, received), "the time limit waited for the hung heartbeat"
    # The start is known to the clock tick (0.01 s); 0.05 s allows for that and the timer.
    assert limit - 0.05 <= received - began < limit + SLACK, (
        f"SIGTERM {received - began:.3f} s after start")
    died = procs.wait_for_exit([command], SLACK)
    assert run.wait(WAIT) == 124, run.describe()
    took = run.exited_at - died  # type: ignore[operator]
    assert took < final_timeout + SLACK, f"pwsup exited {took:.3f} s after the command"
    sequence = steps(api)
    assert sequence[0] == ("POST", "RUNNING", 201)
    assert ("PATCH", "TERMINATED_AFTER_TIME_OUT", None) in sequence, sequence
    assert api.violations == []


# -- c. the command's exit is noticed at once ------------------------------------------------------


def test_exit_is_noticed_at_once_and_a_hung_final_update_is_capped(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """Heartbeats and the final update hang, `--api-final-update-timeout 1`: pwsup exits
    with the command's code about 1 s after the command exited."""
    final_timeout = 1.0
    hang_after_creation(api)
    run = start_pwsup(start, api, "stdin", "--api-final-update-timeout", f"{final_timeout:g}",
                      exit_code=7)
    started(run)
    hung_heartbeat(api)
    run.write("exit\n")
    exited = stamp(run, "exiting")
    assert run.wait(WAIT) == 7, run.describe()
    # The hung final update is given up at its deadline (0.05 s for timer granularity).
    took = run.exited_at - exited  # type: ignore[operator]
    assert final_timeout - 0.05 <= took < final_timeout + SLACK, (
        f"pwsup exited {took:.3f} s after the command")
    assert ("PATCH", "FAILED", None) in steps(api)
    assert "the final status could not be delivered" in run.stderr, run.describe()
    assert api.violations == []


def test_exit_is_noticed_at_once_when_only_a_heartbeat_hangs(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """A heartbeat hangs but the final update goes through: pwsup delivers SUCCEEDED exactly
    once and exits while the heartbeat still hangs."""
    api.script("PATCH", TASK_EXECUTION_PATH, Hang())
    run = start_pwsup(start, api, "stdin")
    started(run)
    hung = hung_heartbeat(api)
    run.write("exit\n")
    exited = stamp(run, "exiting")
    assert run.wait(WAIT) == 0, run.describe()
    assert still_hung(hung, run.exited_at), "pwsup waited for the hung heartbeat"  # type: ignore[arg-type]
    took = run.exited_at - exited  # type: ignore[operator]
    assert took < SLACK, f"pwsup exited {took:.3f} s after the command"
    sequence = steps(api)
    assert sequence == [("POST", "RUNNING", 201), ("PATCH", "RUNNING", None),
                        ("PATCH", "SUCCEEDED", 204)], sequence
    (execution_uuid,) = api.executions
    assert api.requests[0].path == TASK_EXECUTIONS_PATH
    assert {r.path for r in api.requests[1:]} == {f"{TASK_EXECUTIONS_PATH}{execution_uuid}/"}
    assert api.violations == []


# -- d. a reporter killed in the middle of a hung heartbeat ----------------------------------------


def test_reporter_killed_mid_heartbeat_is_replaced_and_reporting_resumes(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """SIGKILL the reporter while its heartbeat hangs: a new reporter (new pid) appears,
    heartbeats succeed again once the API recovers, no second execution is created, and the
    final update arrives exactly once."""
    hang_after_creation(api)
    run = start_pwsup(start, api, "stdin")
    _, command = started(run)
    hung_heartbeat(api)
    old = wait_for_reporter(run.pid)
    os.kill(old.pid, signal.SIGKILL)
    new = wait_for_reporter(run.pid, exclude=[old])
    assert new.pid != old.pid
    assert not old.alive()
    api.clear_always()
    api.release_hangs()
    recovered = time.monotonic()
    api.wait_for(lambda r: r.method == "PATCH" and r.get("status") == "RUNNING"
                 and r.response_status == 204 and r.timestamp > recovered,
                 timeout=EVENT_TIMEOUT)
    assert command.alive()
    run.write("exit\n")
    assert run.wait(WAIT) == 0, run.describe()
    sequence = steps(api)
    assert sequence.count(("POST", "RUNNING", 201)) == 1, sequence
    assert [s for s in sequence if s[0] == "POST"] == [("POST", "RUNNING", 201)]
    finals = [s for s in sequence if s[1] != "RUNNING"]
    assert finals == [("PATCH", "SUCCEEDED", 204)], sequence
    assert sequence[-1] == ("PATCH", "SUCCEEDED", 204)
    assert not new.alive()
    assert api.violations == []


# -- e. the API is down during the final update, and back in time ----------------------------


@pytest.mark.parametrize("faults", [
    pytest.param((Respond(503), Respond(503)), id="503-503"),
    pytest.param((Respond(503), Reset(), Hang()), id="503-reset-hang"),
])
def test_final_update_survives_an_outage_and_is_delivered_once(
        api: FakeCloudReactor, start: Callable[..., Running], faults: tuple[Any, ...]) -> None:
    """The final PATCH meets an outage (503s; or a 503, a reset and a request that hangs
    until the 1 s request timeout) that ends within the final update timeout: it is
    delivered exactly once, and pwsup exits with the command's code."""
    final_timeout = 10.0  # the outage takes about 2 s; the deadline leaves a busy machine room
    api.script("PATCH", TASK_EXECUTION_PATH, *faults)
    run = start_pwsup(start, api, "stdin", "--api-heartbeat-interval", "-1",
                      "--api-request-timeout", "1",
                      "--api-final-update-timeout", f"{final_timeout:g}", exit_code=3)
    started(run)
    api.wait_for(lambda r: r.method == "POST", timeout=EVENT_TIMEOUT)
    run.write("exit\n")
    exited = stamp(run, "exiting")
    assert run.wait(final_timeout + SLACK) == 3, run.describe()
    assert run.exited_at - exited < final_timeout + SLACK, run.describe()  # type: ignore[operator]
    failed = [getattr(f, "status", None) for f in faults]
    assert steps(api) == [("POST", "RUNNING", 201),
                          *[("PATCH", "FAILED", status) for status in failed],
                          ("PATCH", "FAILED", 204)]
    delivered = [r for r in api.requests if r.method == "PATCH" and r.response_status == 204]
    assert len(delivered) == 1
    assert delivered[0].get("exit_code") == 3
    (execution,) = api.executions.values()
    assert execution["status"] == "FAILED"
    assert api.pending_scripts == 0
    assert api.violations == []

