"""Reporting to the CloudReactor API, end to end: pwsup against the fake server.

Every test runs the real `pwsup` console script against `FakeCloudReactor` (real HTTP on
127.0.0.1, every request checked against the protocol) and asserts the exact sequence of
requests — method, path, the `status` in the body, the answer — and pwsup's exit code, plus
`api.violations == []`.

Timing options are small (`FAST`) so that retries and heartbeats all happen within a second
or two, while the deadlines that end them leave a busy machine room. Nothing sleeps to wait:
tests wait on recorded requests (`api.wait_for`), on lines the command prints, or on pwsup's
exit (a pidfd). Durations are asserted as documented bounds plus SLACK
(helpers/bounds.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT, SLACK
from helpers.fake_cloudreactor import (
    TASK_EXECUTION_PATH,
    TASK_EXECUTIONS_PATH,
    ApiKey,
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

PWSUP = str(Path(sys.executable).parent / "pwsup")
TASK = "api-reporting-task"
FAST = (
    "--api-retry-delay", "0.2",
    "--api-request-timeout", "1",
    "--api-error-timeout", "10",
    "--api-final-update-timeout", "10",
    "--api-task-execution-creation-error-timeout", "10",
    "--shutdown-report-timeout", "1",
    "--process-termination-grace-period", "1",
    "--process-retry-delay", "0.2",
)
"""Small values for every API and process delay; the deadlines by which retried requests
must have succeeded are longer, so a retry that a busy machine makes late still counts. The
heartbeat stays at its default (300 s) unless a test sets it, so the request sequences below
are exact."""
CONFLICT_TIMEOUT = 3.0
CONFLICT_RETRY_DELAY = 0.3
CONFLICT = ("--api-task-execution-creation-conflict-timeout", f"{CONFLICT_TIMEOUT:g}",
            "--api-task-execution-creation-conflict-retry-delay", f"{CONFLICT_RETRY_DELAY:g}")
WAIT = EXIT_TIMEOUT
"""Longest wait for any pwsup run to end (each is expected to take a second or two)."""

# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    """The fake server, with the Task `TASK` already defined (as a developer would)."""
    with FakeCloudReactor() as fake:
        fake.create_task(TASK)
        yield fake


def api_env(api: FakeCloudReactor) -> dict[str, str]:
    """A clean environment pointing pwsup at the fake with a valid key (online)."""
    return clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                      "PROC_WRAPPER_API_KEY": api.api_key})


def child(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


def pwsup(command: Sequence[str], *options: str) -> list[str]:
    """`pwsup -n TASK <FAST> <options> -- command`."""
    return [PWSUP, "-n", TASK, *FAST, *options, "--", *command]


def steps(api: FakeCloudReactor) -> list[tuple[str, Any, int | None]]:
    """(method, status in the body, response status) of every request, in order (lookups
    for a start whose answer was lost aside: tests/hostile/test_reporter_faults.py)."""
    return [(r.method, r.get("status"), r.response_status) for r in api.requests
            if r.method != "GET"]


def patch_path(execution_uuid: str) -> str:
    return f"{TASK_EXECUTIONS_PATH}{execution_uuid}/"


def assert_paths(api: FakeCloudReactor, execution_uuid: str, *, attach: bool = False) -> None:
    """POSTs go to the collection; PATCHes to the execution with ?content=false (except the
    attach PATCH, which wants the execution back)."""
    for index, r in enumerate(r for r in api.requests if r.method != "GET"):
        if r.method == "POST":
            assert r.path == TASK_EXECUTIONS_PATH, r
            assert r.query == {}, r
        else:
            assert r.method == "PATCH", r
            assert r.path == patch_path(execution_uuid), r
            if attach and index == 0:
                assert r.query == {}, r
            else:
                assert r.query == {"content": ["false"]}, r


def patches(api: FakeCloudReactor) -> list[RecordedRequest]:
    return [r for r in api.requests if r.method == "PATCH"]


def created_uuid(api: FakeCloudReactor) -> str:
    """The uuid of the one execution the fake created."""
    (execution_uuid,) = api.executions
    return execution_uuid


def finished(pwsup_run: Running, timeout: float = WAIT) -> int:
    return pwsup_run.wait(timeout)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PRINT_UUID = """
    import os
    print("uuid", os.environ.get("PROC_WRAPPER_TASK_EXECUTION_UUID"), flush=True)
    """
"""Child: prints the execution uuid pwsup gave it, exits 0."""

TOUCH = """
    import sys
    open(sys.argv[1], "w").close()
    print("ran", flush=True)
    """
"""Child: creates the file argv[1] (proof that it ran), exits 0."""

WAIT_FOR_STDIN = """
    import os, sys
    print("ready", os.getpid(), flush=True)
    sys.stdin.readline()
    """
"""Child: `ready <pid>`, then exits 0 once a line (or EOF) arrives on stdin."""

# -- 1. success -----------------------------------------------------------------------------


def test_success_is_reported_with_post_then_final_patch(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """POST RUNNING (201) → PATCH SUCCEEDED (204) with exit_code 0 and finished_at; the
    command sees the created execution's uuid in PROC_WRAPPER_TASK_EXECUTION_UUID."""
    run = start(pwsup(child(PRINT_UUID)), env=api_env(api))
    assert finished(run) == 0, run.describe()
    execution_uuid = created_uuid(api)
    assert run.lines() == [f"uuid {execution_uuid}"], run.describe()
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "SUCCEEDED", 204)]
    assert_paths(api, execution_uuid)
    post, final = api.requests
    assert post.get("task", {}).get("name") == TASK
    assert post.get("started_at")
    assert final.get("exit_code") == 0
    assert final.get("finished_at")
    assert "failed_attempts" not in final.json
    stored = api.execution(execution_uuid)
    assert stored["status"] == "SUCCEEDED"
    assert stored["exit_code"] == 0
    assert api.violations == []


def test_auto_created_task_omits_a_heartbeat_interval_the_server_rejects(
        start: Callable[..., Running]) -> None:
    """`-a -d ENV` auto-creates the Task; a 0.5 s heartbeat interval is left out of the task
    object (the server rejects < 10 s), so the POST is accepted and the run is reported."""
    with FakeCloudReactor() as api:
        run = start(pwsup(child(PRINT_UUID), "-a", "-d", "staging",
                          "--api-heartbeat-interval", "5"), env=api_env(api))
        assert finished(run) == 0, run.describe()
        execution_uuid = created_uuid(api)
        assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "SUCCEEDED", 204)]
        task = api.requests[0].get("task")
        assert task["was_auto_created"] is True
        assert task["run_environment"] == {"name": "staging"}
        assert "heartbeat_interval_seconds" not in task
        assert api.task(TASK)["run_environment"]["name"] == "staging"
        assert run.lines() == [f"uuid {execution_uuid}"]
        assert api.violations == []


# -- 2. failure with retries --------------------------------------------------------------


def test_failure_with_retries_reports_each_attempt(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`-r 2`, command exits 4 every time: PATCH RUNNING {failed_attempts 1, exit_code 4},
    PATCH RUNNING {2, 4}, final FAILED {3, 4}; pwsup exits 4."""
    run = start(pwsup(child("raise SystemExit(4)"), "-r", "2"), env=api_env(api))
    assert finished(run) == 4, run.describe()
    execution_uuid = created_uuid(api)
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "RUNNING", 204),
                          ("PATCH", "RUNNING", 204), ("PATCH", "FAILED", 204)]
    assert_paths(api, execution_uuid)
    first, second, final = patches(api)
    assert (first.get("failed_attempts"), first.get("exit_code")) == (1, 4)
    assert (second.get("failed_attempts"), second.get("exit_code")) == (2, 4)
    assert (final.get("failed_attempts"), final.get("exit_code")) == (3, 4)
    assert "finished_at" not in first.json
    assert "finished_at" not in second.json
    assert final.get("finished_at")
    stored = api.execution(execution_uuid)
    assert (stored["status"], stored["failed_attempts"], stored["exit_code"]) == ("FAILED", 3, 4)
    assert api.violations == []


# -- 3. timeout with a retry ----------------------------------------------------------------


def test_timeout_with_a_retry_reports_timed_out_attempts(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`-t 0.5 -r 1` on a 30 s command: PATCH RUNNING {timed_out_attempts 1}, then final
    TERMINATED_AFTER_TIME_OUT {timed_out_attempts 2}; pwsup exits 124."""
    run = start(pwsup(child("import time; time.sleep(30)"), "-t", "0.5", "-r", "1"),
                env=api_env(api))
    assert finished(run) == 124, run.describe()
    execution_uuid = created_uuid(api)
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "RUNNING", 204),
                          ("PATCH", "TERMINATED_AFTER_TIME_OUT", 204)]
    assert_paths(api, execution_uuid)
    intermediate, final = patches(api)
    assert intermediate.get("timed_out_attempts") == 1
    assert "failed_attempts" not in intermediate.json
    assert final.get("timed_out_attempts") == 2
    assert "failed_attempts" not in final.json
    assert isinstance(final.get("exit_code"), int)
    assert final.get("finished_at")
    assert api.execution(execution_uuid)["status"] == "TERMINATED_AFTER_TIME_OUT"
    assert api.violations == []


# -- 4. heartbeats --------------------------------------------------------------------------


def test_heartbeats_arrive_at_the_interval_and_send_pid_sends_the_pid(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`--api-heartbeat-interval 0.5 --send-pid`: a PATCH {RUNNING, pid} right after the
    start, then heartbeats 0.5 s apart (the command runs until two have come), then
    SUCCEEDED."""
    interval = 0.5
    code = """
        import os, sys
        print("pid", os.getpid(), flush=True)
        sys.stdin.readline()
        """
    run = start(pwsup(child(code), "--api-heartbeat-interval", f"{interval:g}", "--send-pid"),
                env=api_env(api), stdin=subprocess.PIPE)
    api.wait_for(lambda r: r.json == {"status": "RUNNING"}, timeout=EVENT_TIMEOUT, count=2)
    run.close_stdin()
    assert finished(run) == 0, run.describe()
    command_pid = int(run.lines()[0].split()[1])
    execution_uuid = created_uuid(api)
    assert_paths(api, execution_uuid)
    sequence = steps(api)
    assert sequence[0] == ("POST", "RUNNING", 201)
    assert sequence[-1] == ("PATCH", "SUCCEEDED", 204)
    running = api.requests[1:-1]
    assert all(step == ("PATCH", "RUNNING", 204) for step in sequence[1:-1]), sequence
    pid_updates = [r for r in running if "pid" in r.json]
    assert [r.get("pid") for r in pid_updates] == [command_pid]
    assert running[0] is pid_updates[0], "the pid is sent as soon as the command started"
    heartbeats = [r for r in running if r.json == {"status": "RUNNING"}]
    assert len(heartbeats) >= 2, sequence
    beats = [pid_updates[0].timestamp] + [r.timestamp for r in heartbeats]
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    # Each heartbeat is due one interval after the previous update was answered (0.1 s
    # for timer granularity).
    assert all(interval - 0.1 <= gap < interval + SLACK for gap in gaps), gaps
    assert api.violations == []


# -- 5. concurrency conflicts at creation ---------------------------------------------------


def test_conflicts_at_creation_are_retried_until_the_server_accepts(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path) -> None:
    """Two 409s, then the normal 201: the command starts after the retries (conflict retry
    delay 0.3 s, within the conflict timeout)."""
    api.script("POST", TASK_EXECUTIONS_PATH, Respond(409), Respond(409))
    marker = tmp_path / "ran"
    run = start(pwsup(child(TOUCH, str(marker)), *CONFLICT), env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert marker.exists()
    assert steps(api) == [("POST", "RUNNING", 409), ("POST", "RUNNING", 409),
                          ("POST", "RUNNING", 201), ("PATCH", "SUCCEEDED", 204)]
    assert_paths(api, created_uuid(api))
    times = [r.timestamp for r in api.requests[:3]]
    assert all(CONFLICT_RETRY_DELAY - 0.05 <= b - a < CONFLICT_RETRY_DELAY + SLACK
               for a, b in itertools.pairwise(times)), times
    assert api.pending_scripts == 0
    assert api.violations == []


def test_persistent_conflict_exits_75_without_running_the_command(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path) -> None:
    """Every POST gets 409 (retry delay 0.3 s): pwsup keeps asking until the 3 s conflict
    timeout has passed, then exits 75; the command never ran."""
    api.always("POST", Respond(409), path=TASK_EXECUTIONS_PATH)
    marker = tmp_path / "ran"
    run = start(pwsup(child(TOUCH, str(marker)), *CONFLICT), env=api_env(api))
    assert finished(run) == 75, run.describe()
    assert not marker.exists()
    sequence = steps(api)
    assert len(sequence) >= 4, sequence
    assert set(sequence) == {("POST", "RUNNING", 409)}, sequence
    # pwsup keeps asking for the whole conflict timeout, which starts when it first asks
    # (after its own start), and gives up once it has passed.
    first = api.requests[0].timestamp
    gave_up = run.exited_at - first  # type: ignore[operator]
    assert gave_up < CONFLICT_TIMEOUT + SLACK, f"pwsup exited {gave_up:.3f} s after the first POST"
    assert run.elapsed >= CONFLICT_TIMEOUT, (
        f"pwsup gave up {run.elapsed:.3f} s after its start, before the {CONFLICT_TIMEOUT:g} s "
        f"conflict timeout; POSTs at {[round(r.timestamp - first, 3) for r in api.requests]} s")
    assert api.executions == {}
    assert api.violations == []


# -- 6. errors at creation --------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    pytest.param(Respond(500), id="500"),
    pytest.param(Respond(502), id="502"),
    pytest.param(Reset(), id="connection-reset"),
    pytest.param(Hang(), id="hang-until-request-timeout"),
])
def test_transient_creation_error_is_retried(
        api: FakeCloudReactor, start: Callable[..., Running], fault: object) -> None:
    """One failed POST (server error, TCP reset, or no answer within the 1 s request
    timeout), then success: the run is reported normally."""
    api.script("POST", TASK_EXECUTIONS_PATH, fault)  # type: ignore[arg-type]
    run = start(pwsup(child(PRINT_UUID)), env=api_env(api))
    assert finished(run) == 0, run.describe()
    execution_uuid = created_uuid(api)
    failed_status = fault.status if isinstance(fault, Respond) else None
    assert steps(api) == [("POST", "RUNNING", failed_status), ("POST", "RUNNING", 201),
                          ("PATCH", "SUCCEEDED", 204)]
    assert_paths(api, execution_uuid)
    assert run.lines() == [f"uuid {execution_uuid}"]
    posts = [r for r in api.requests if r.method == "POST"]
    gap = posts[1].timestamp - posts[0].timestamp
    # Not before the retry delay (0.05 s for timer granularity), nor, for the request that
    # hangs, before the 1 s request timeout (counted from the request's sending, a moment
    # before the server saw it).
    minimum = 1.0 if isinstance(fault, Hang) else 0.15
    assert minimum <= gap < minimum + 0.2 + SLACK, gap
    assert api.violations == []


def test_503_with_retry_after_is_retried_after_the_given_delay(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """503 with `Retry-After: 1` (the retry delay is 0.2 s): the second POST comes at least
    0.9 s after the first."""
    api.script("POST", TASK_EXECUTIONS_PATH, Respond(503, headers={"Retry-After": "1"}))
    run = start(pwsup(child(PRINT_UUID)), env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert steps(api) == [("POST", "RUNNING", 503), ("POST", "RUNNING", 201),
                          ("PATCH", "SUCCEEDED", 204)]
    assert_paths(api, created_uuid(api))
    posts = [r for r in api.requests if r.method == "POST"]
    gap = posts[1].timestamp - posts[0].timestamp
    assert 0.9 <= gap < 1.0 + SLACK, gap
    assert api.violations == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_error_at_creation_is_not_retried_and_the_command_runs_unreported(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path,
        status: int) -> None:
    """A 4xx (other than 409/429) at creation: exactly one POST, the command runs anyway
    (no `-p`), pwsup exits 0, and nothing else is sent."""
    api.script("POST", TASK_EXECUTIONS_PATH, Respond(status))
    marker = tmp_path / "ran"
    run = start(pwsup(child(TOUCH, str(marker))), env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert marker.exists()
    assert steps(api) == [("POST", "RUNNING", status)]
    assert api.executions == {}
    assert api.violations == []


@pytest.mark.parametrize("status", [401, 422])
def test_rejected_creation_is_not_repeated_when_the_command_fails(
        api: FakeCloudReactor, start: Callable[..., Running], status: int) -> None:
    """A run whose creation the server rejected (bad key, unknown Task) is not "sampled
    out": when the command then fails, pwsup does not POST a late FAILED report with the
    same rejected request (only a run that was never asked about, because sampling left it
    out, is reported late: the server has already said no to this one). Exactly one POST;
    pwsup exits with the command's code."""
    api.always("POST", Respond(status), path=TASK_EXECUTIONS_PATH)
    run = start(pwsup(child("raise SystemExit(3)")), env=api_env(api))
    assert finished(run) == 3, run.describe()
    assert steps(api) == [("POST", "RUNNING", status)], run.describe()
    assert api.violations == []


@pytest.mark.parametrize(("status", "exit_code"), [(403, 77), (401, 1), (422, 1)])
def test_prevent_offline_execution_refuses_to_run_after_a_client_error(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path,
        status: int, exit_code: int) -> None:
    """With `-p`: 403 → exit 77, 401/422 → exit 1, one POST, and the command never ran."""
    api.script("POST", TASK_EXECUTIONS_PATH, Respond(status))
    marker = tmp_path / "ran"
    run = start(pwsup(child(TOUCH, str(marker)), "-p"), env=api_env(api))
    assert finished(run) == exit_code, run.describe()
    assert not marker.exists()
    assert steps(api) == [("POST", "RUNNING", status)]
    assert api.violations == []


def test_prevent_offline_execution_with_an_unreachable_server_exits_1(
        start: Callable[..., Running], tmp_path: Path) -> None:
    """With `-p` and nothing listening at the base URL: connection refused until the 1 s
    creation error timeout, then exit 1; the command never ran."""
    env = clean_env({"PROC_WRAPPER_API_BASE_URL": f"http://127.0.0.1:{closed_port()}",
                     "PROC_WRAPPER_API_KEY": "unreachable-server-key-0123456789"})
    marker = tmp_path / "ran"
    deadline = 1.0
    run = start(pwsup(child(TOUCH, str(marker)), "-p",
                      "--api-task-execution-creation-error-timeout", f"{deadline:g}"), env=env)
    assert finished(run) == 1, run.describe()
    assert not marker.exists()
    assert deadline <= run.elapsed < deadline + SLACK, run.describe()


def test_prevent_offline_execution_without_an_api_key_is_a_configuration_error(
        start: Callable[..., Running], tmp_path: Path) -> None:
    """`-p` with no API key: exit 78 before anything starts."""
    marker = tmp_path / "ran"
    run = start(pwsup(child(TOUCH, str(marker)), "-p"), env=clean_env())
    assert finished(run) == 78, run.describe()
    assert not marker.exists()


# -- 7. attaching to an execution the server created -----------------------------------------


def test_attach_to_a_pre_created_execution(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`--task-execution-uuid`: a PATCH without ?content=false attaches (no POST), then
    the final PATCH; the command sees that uuid."""
    execution_uuid = api.create_execution(TASK)["uuid"]
    run = start(pwsup(child(PRINT_UUID), "--task-execution-uuid", execution_uuid),
                env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert run.lines() == [f"uuid {execution_uuid}"]
    assert steps(api) == [("PATCH", "RUNNING", 200), ("PATCH", "SUCCEEDED", 204)]
    assert_paths(api, execution_uuid, attach=True)
    assert "task" not in api.requests[0].json
    assert list(api.executions) == [execution_uuid]
    assert api.execution(execution_uuid)["status"] == "SUCCEEDED"
    assert api.violations == []


# -- 8. the server stops the execution --------------------------------------------------------

TERM_REPORTER = """
    import os, signal, sys, time
    ignore = sys.argv[1] == "ignore"
    def on_term(signum, frame):
        os.write(1, b"SIGTERM\\n")
        if not ignore:
            os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    os.write(1, f"ready {os.getpid()}\\n".encode())
    end = time.monotonic() + 30
    while time.monotonic() < end:
        time.sleep(0.05)
    """
"""Child: `ready <pid>`, then loops; prints `SIGTERM` when it gets one, and exits 0 unless
argv[1] is "ignore"."""


@pytest.mark.parametrize("on_term", ["exit", "ignore"])
def test_remote_stop_terminates_the_command_and_exits_75(
        api: FakeCloudReactor, start: Callable[..., Running], on_term: str) -> None:
    """The execution is stopped on the server: the next heartbeat gets 409, the command gets
    SIGTERM (and SIGKILL after the 1 s grace if it ignores it), and pwsup exits 75 within a
    heartbeat interval (plus the grace period)."""
    interval, grace = 0.5, 1.0
    run = start(pwsup(child(TERM_REPORTER, on_term), "--api-heartbeat-interval", str(interval)),
                env=api_env(api))
    command = run.expect_ready()
    post = api.wait_for(lambda r: r.method == "POST", timeout=EVENT_TIMEOUT)
    execution_uuid = post.execution_uuid
    assert execution_uuid is not None
    stopped_at = time.monotonic()
    api.mark_stopped(execution_uuid)
    # The next heartbeat meets the stop; SIGTERM follows at once.
    assert run.expect("SIGTERM", timeout=interval + SLACK) == "SIGTERM", run.describe()
    assert finished(run) == 75, run.describe()
    assert not command.alive()
    took = run.exited_at - stopped_at  # type: ignore[operator]
    budget = interval + (grace if on_term == "ignore" else 0.0) + SLACK
    assert took < budget, f"pwsup exited {took:.3f} s after the stop"
    if on_term == "ignore":
        assert took >= grace, f"SIGKILL came before the grace period ({took:.3f} s)"
    # The heartbeat that met the stop is answered 409; before it only successful
    # heartbeats, after it at most one final status (never a retried heartbeat).
    sequence = steps(api)
    stop = sequence.index(("PATCH", "RUNNING", 409))
    assert sequence[0] == ("POST", "RUNNING", 201)
    assert set(sequence[1:stop]) <= {("PATCH", "RUNNING", 204)}, sequence
    after = sequence[stop + 1:]
    assert len(after) <= 1, sequence
    assert all(status != "RUNNING" for _, status, _ in after), sequence
    assert_paths(api, execution_uuid)
    assert api.execution(execution_uuid)["status"] == "STOPPED"
    assert api.violations == []


# -- 9. the final update ------------------------------------------------------------------------


def test_final_update_is_retried_through_503s_and_delivered_once(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """The final PATCH gets 503 twice (a proxy's HTML page), then goes through: exactly one
    SUCCEEDED PATCH is answered 2xx."""
    api.script("PATCH", TASK_EXECUTION_PATH, Respond(503), Respond(503))
    run = start(pwsup(child("print('done')")), env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "SUCCEEDED", 503),
                          ("PATCH", "SUCCEEDED", 503), ("PATCH", "SUCCEEDED", 204)]
    assert_paths(api, created_uuid(api))
    delivered = [r for r in patches(api) if r.response_status == 204]
    assert len(delivered) == 1
    assert api.execution(created_uuid(api))["status"] == "SUCCEEDED"
    assert api.violations == []


def test_final_update_that_hangs_is_given_up_after_the_final_update_timeout(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """Every PATCH hangs: pwsup exits with the command's code once the final update timeout
    (1.5 s) has passed after the command exited, and says the status was not delivered."""
    api.always("PATCH", Hang(), path=TASK_EXECUTION_PATH)
    code = """
        import time
        print("exiting", time.monotonic(), flush=True)
        raise SystemExit(3)
        """
    final_timeout = 1.5
    run = start(pwsup(child(code), "--api-final-update-timeout", f"{final_timeout:g}"),
                env=api_env(api))
    assert finished(run) == 3, run.describe()
    exited = float(run.lines()[0].split()[1])
    took = run.exited_at - exited  # type: ignore[operator]
    assert final_timeout <= took < final_timeout + SLACK, (
        f"pwsup exited {took:.3f} s after the command")
    sequence = steps(api)
    assert sequence[0] == ("POST", "RUNNING", 201)
    assert set(sequence[1:]) == {("PATCH", "FAILED", None)}, sequence
    assert len(sequence) in (2, 3), sequence  # 1 s request timeout, 0.2 s retry, 1.5 s cap
    assert "the final status could not be delivered" in run.stderr, run.describe()
    assert api.violations == []


# -- 10. sampling ----------------------------------------------------------------------------------


def test_sampled_out_success_sends_nothing(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path) -> None:
    """`-m 0`: the run is not reported at all when it succeeds."""
    marker = tmp_path / "ran"
    run = start(pwsup(child(TOUCH, str(marker)), "-m", "0"), env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert marker.exists()
    assert api.requests == []
    assert api.violations == []


def test_sampled_out_failure_is_reported_late_in_one_post(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`-m 0 --api-failure-report-probability 1`: a failure is reported after the fact with a
    single POST carrying status FAILED; pwsup exits with the command's code."""
    run = start(pwsup(child("raise SystemExit(5)"), "-m", "0",
                      "--api-failure-report-probability", "1"), env=api_env(api))
    assert finished(run) == 5, run.describe()
    assert steps(api) == [("POST", "FAILED", 201)]
    post = api.requests[0]
    assert post.get("exit_code") == 5
    assert post.get("finished_at")
    assert api.execution(created_uuid(api))["status"] == "FAILED"
    assert api.violations == []


# -- 11. status updates from the command -----------------------------------------------------------

STATUS_SENDER = """
    import os, socket, sys, time
    from pwsup import StatusUpdater

    mode = sys.argv[1]
    updater = StatusUpdater()
    updater.send_update(success_count=10, error_count=1, expected_count=100,
                        last_status_message="step 1", extra_props={"step": 1, "phase": "work"})
    if mode == "forged":
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        port = int(os.environ["PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT"])
        raw.sendto(b'{"status": "FAILED", "exit_code": 3, "skipped_count": 2}\\n',
                   ("127.0.0.1", port))
        raw.close()
    print("sent", time.monotonic(), flush=True)
    if mode == "burst":
        sys.stdin.readline()
        updater.send_update(success_count=20, last_status_message="step 2")
        print("sent again", time.monotonic(), flush=True)
    updater.shutdown()
    sys.stdin.readline()
    """
"""Child: sends counts, a message and extra props with StatusUpdater; then, by argv[1]:
"forged" — a raw datagram that tries to set `status` and `exit_code` (with one legitimate
key, skipped_count). Prints `sent <monotonic>`. With "burst" it then waits for a stdin line,
sends a second update at once and prints `sent again <monotonic>`. Then it waits for stdin
and exits 0 ("single": nothing more)."""


def status_run(api: FakeCloudReactor, start: Callable[..., Running], mode: str,
               *options: str) -> Running:
    return start(pwsup(child(STATUS_SENDER, mode), "--enable-status-update-listener",
                       "--status-update-socket-port", str(free_udp_port()), *options),
                 env=api_env(api), stdin=subprocess.PIPE)


def carries_status(r: RecordedRequest) -> bool:
    return r.method == "PATCH" and r.get("success_count") == 10


def assert_status_fields(r: RecordedRequest) -> None:
    assert r.get("status") == "RUNNING"
    assert r.get("error_count") == 1
    assert r.get("expected_count") == 100
    assert r.get("last_status_message") == "step 1"
    assert r.get("other_runtime_metadata") == {"step": 1, "phase": "work"}
    assert "exit_code" not in r.json


def assert_no_forged_status(api: FakeCloudReactor) -> None:
    """Neither the datagram's `status` nor its `exit_code` ever reached the server."""
    for r in api.requests:
        assert r.get("status") in ("RUNNING", "SUCCEEDED"), r
        if r.get("status") == "RUNNING":
            assert "exit_code" not in r.json, r
        else:
            assert r.get("exit_code") == 0, r


def test_status_updates_ride_on_the_next_heartbeat(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """Counts, message and extra props (as other_runtime_metadata) arrive on the next
    heartbeat; the forged datagram's `status`/`exit_code` never reach the server (its
    legitimate skipped_count does)."""
    run = status_run(api, start, "forged", "--api-heartbeat-interval", "0.5")
    run.expect("sent ")
    carrier = api.wait_for(carries_status, timeout=EVENT_TIMEOUT)
    assert_status_fields(carrier)
    assert carrier.get("skipped_count") == 2
    assert carrier.response_status == 204
    run.close_stdin()
    assert finished(run) == 0, run.describe()
    sequence = steps(api)
    assert sequence[0] == ("POST", "RUNNING", 201)
    assert sequence[-1] == ("PATCH", "SUCCEEDED", 204)
    assert set(sequence[1:-1]) == {("PATCH", "RUNNING", 204)}, sequence
    assert_paths(api, created_uuid(api))
    assert_no_forged_status(api)
    stored = api.execution(created_uuid(api))
    assert (stored["success_count"], stored["error_count"], stored["expected_count"],
            stored["skipped_count"]) == (10, 1, 100, 2)
    metadata = dict(stored["other_runtime_metadata"])
    assert metadata.pop("pwsup_usage")["attempt"] == 1  # what the attempt cost, beside them
    assert metadata == {"step": 1, "phase": "work"}
    assert stored["status"] == "SUCCEEDED"
    assert api.violations == []


def test_status_updates_are_sent_promptly_with_a_status_update_interval(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`--status-update-interval 0.1` and no heartbeat due for 300 s: the values are sent at
    once (no later than the interval after the datagram), in a PATCH of their own."""
    interval = 0.1
    run = status_run(api, start, "single", "--status-update-interval", f"{interval:g}")
    sent = float(run.expect("sent ").split()[1])
    carrier = api.wait_for(carries_status, timeout=EVENT_TIMEOUT)
    assert carrier.timestamp - sent < interval + SLACK, carrier.timestamp - sent
    assert_status_fields(carrier)
    run.close_stdin()
    assert finished(run) == 0, run.describe()
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "RUNNING", 204),
                          ("PATCH", "SUCCEEDED", 204)]
    assert_paths(api, created_uuid(api))
    assert_no_forged_status(api)
    assert api.violations == []


def test_status_update_within_the_interval_is_sent_once_the_interval_has_passed(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`--status-update-interval 0.1`: the first update is sent at once; a second one that
    comes right after that send (less than 0.1 s later) must go out once the interval has
    passed — not be held back until the next heartbeat, 300 s away (or the final update)."""
    interval = 0.1
    run = status_run(api, start, "burst", "--status-update-interval", f"{interval:g}")
    run.expect("sent ")
    api.wait_for(carries_status, timeout=EVENT_TIMEOUT)
    run.write("go\n")
    sent_again = float(run.expect("sent again ").split()[2])
    latest: RecordedRequest | None = None
    with contextlib.suppress(TimeoutError):
        latest = api.wait_for(
            lambda r: r.method == "PATCH" and r.get("success_count") == 20,
            timeout=interval + SLACK)
    run.close_stdin()
    assert finished(run) == 0, run.describe()
    assert latest is not None, (
        f"the second status update was not sent within {interval + SLACK:g} s although the "
        f"interval is {interval:g} s; requests: {[(r.method, r.json) for r in patches(api)]}")
    assert latest.get("status") == "RUNNING"
    assert latest.timestamp - sent_again < interval + SLACK, latest.timestamp - sent_again
    assert latest.get("last_status_message") == "step 2"
    assert steps(api)[-1] == ("PATCH", "SUCCEEDED", 204)
    assert api.violations == []


# -- 12. log tails ---------------------------------------------------------------------------------

WRITE_BOTH = """
    import os
    for n in (1, 2, 3):
        os.write(1, f"out {n}\\n".encode())
    for n in (1, 2, 3):  # one write per line: print() makes two when Python is unbuffered,
        os.write(2, f"err {n}\\n".encode())  # and pwsup's own line may come in between
    raise SystemExit(2)
    """


@pytest.mark.parametrize("separate", [False, True], ids=["merged", "separate"])
def test_log_tail_is_sent_on_failure(
        api: FakeCloudReactor, start: Callable[..., Running], separate: bool) -> None:
    """`--num-log-lines-sent-on-failure 2`: the last 2 lines go with FAILED — of both
    streams merged, or of each with `--separate-stdout-and-stderr-logs` — and the command's
    output still reaches pwsup's stdout and stderr."""
    options = ["--num-log-lines-sent-on-failure", "2"]
    if separate:
        options.append("--separate-stdout-and-stderr-logs")
    run = start(pwsup(child(WRITE_BOTH), *options), env=api_env(api))
    assert finished(run) == 2, run.describe()
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "FAILED", 204)]
    final = api.requests[-1]
    if separate:
        assert final.get("debug_log_tail") == "out 2\nout 3\n"
        assert final.get("error_log_tail") == "err 2\nerr 3\n"
    else:
        assert final.get("debug_log_tail") == "err 2\nerr 3\n"
        assert "error_log_tail" not in final.json
    assert run.lines("out") == ["out 1", "out 2", "out 3"], run.describe()
    assert [line for line in run.lines("err") if not line.startswith("PWSUP: ")] == [
        "err 1", "err 2", "err 3"], run.describe()
    assert api.violations == []


BIG_BINARY_OUTPUT = """
    import sys
    line = b"x" * 180 + b" \\xff\\xfe not utf-8 \\x80\\n"
    chunk = line * 1000
    for _ in range(50):  # 10 MB on stdout, 1 MB on stderr
        sys.stdout.buffer.write(chunk)
        if _ % 10 == 0:
            sys.stderr.buffer.write(chunk)
    sys.stdout.buffer.write(b"last \\xc3\\x28 line\\n")
    sys.stdout.buffer.flush()
    sys.stderr.buffer.flush()
    raise SystemExit(1)
    """


def test_large_invalid_utf8_output_does_not_deadlock_and_the_tail_is_replaced(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """10 MB of output with invalid UTF-8: the run finishes, every byte reaches pwsup's
    stdout, and the tail sent on failure has replacement characters."""
    run = start(pwsup(child(BIG_BINARY_OUTPUT), "--num-log-lines-sent-on-failure", "2"),
                env=api_env(api))
    assert finished(run) == 1, run.describe()[-2000:]
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "FAILED", 204)]
    tail = api.requests[-1].get("debug_log_tail")
    assert isinstance(tail, str)
    assert tail.endswith("last \ufffd( line\n"), repr(tail[-200:])
    assert "\ufffd\ufffd not utf-8 \ufffd" in tail, repr(tail[-300:])
    assert len(tail.splitlines()) == 2
    out = run.lines("out")
    assert len(out) == 50 * 1000 + 1
    assert out[-1] == "last \ufffd( line"
    assert api.violations == []


# -- 13. input and result values -------------------------------------------------------------------


def test_input_value_is_sent_with_send_input_value(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """`-i '{"a": 1}' --input-value-format json --send-input-value`: the POST carries
    input_value {"a": 1}; the command gets the text in PROC_WRAPPER_INPUT_VALUE."""
    code = """
        import os
        print("input", os.environ.get("PROC_WRAPPER_INPUT_VALUE"), flush=True)
        """
    run = start(pwsup(child(code), "-i", '{"a": 1}', "--input-value-format", "json",
                      "--send-input-value"), env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert run.lines() == ['input {"a": 1}']
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "SUCCEEDED", 204)]
    assert api.requests[0].get("input_value") == {"a": 1}
    assert api.violations == []


def test_input_file_is_private_while_the_command_runs_and_removed_after(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path) -> None:
    """`--input-filename`: the file exists with mode 0600 and the input while the command
    runs, and is gone once pwsup has exited."""
    path = tmp_path / "input.txt"
    code = """
        import os, stat, sys
        path = sys.argv[1]
        mode = stat.S_IMODE(os.stat(path).st_mode)
        print("mode", oct(mode), "content", open(path).read(), flush=True)
        """
    run = start(pwsup(child(code, str(path)), "-i", "hello", "--input-filename", str(path)),
                env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert run.lines() == [f"mode {oct(stat.S_IRUSR | stat.S_IWUSR)} content hello"], \
        run.describe()
    assert not path.exists()
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "SUCCEEDED", 204)]
    assert api.violations == []


@pytest.mark.parametrize("case", [
    pytest.param(("result.json", '{"x": [1, 2], "y": "z"}', {"x": [1, 2], "y": "z"}), id="json"),
    pytest.param(("result.yaml", "x: 1\ny: [a, b]\n", {"x": 1, "y": ["a", "b"]}), id="yaml"),
    pytest.param(("result.env", "A=1\nB=two\n", {"A": "1", "B": "two"}), id="dotenv"),
    pytest.param(("result.txt", "plain text\n", "plain text\n"), id="text"),
])
def test_result_file_is_sent_as_output_value(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path,
        case: tuple[str, str, object]) -> None:
    """The command writes `--result-filename`; its parsed value (format from the file
    name) is the SUCCEEDED PATCH's output_value, and the file is removed."""
    name, content, expected = case
    path = tmp_path / name
    code = """
        import sys
        with open(sys.argv[1], "w") as f:
            f.write(sys.argv[2])
        """
    run = start(pwsup(child(code, str(path), content), "--result-filename", str(path)),
                env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "SUCCEEDED", 204)]
    assert api.requests[-1].get("output_value") == expected
    assert api.execution(created_uuid(api))["output_value"] == expected
    assert not path.exists()
    assert api.violations == []


def test_malformed_result_fails_the_run(
        api: FakeCloudReactor, start: Callable[..., Running], tmp_path: Path) -> None:
    """A result file that is not valid JSON: the final status is FAILED and pwsup exits 1,
    naming the file but not quoting its content."""
    path = tmp_path / "result.json"
    code = """
        import sys
        with open(sys.argv[1], "w") as f:
            f.write('{"secret-ish": ')
        """
    run = start(pwsup(child(code, str(path)), "--result-filename", str(path)),
                env=api_env(api))
    assert finished(run) == 1, run.describe()
    assert steps(api) == [("POST", "RUNNING", 201), ("PATCH", "FAILED", 204)]
    assert "output_value" not in api.requests[-1].json
    assert api.requests[-1].json["exit_code"] == 1  # the run failed, as pwsup's own exit says
    assert str(path) in run.stderr
    assert "secret-ish" not in run.stderr
    assert api.violations == []


# -- 14. the API key stays secret ------------------------------------------------------------------

SECRET_KEY = "s3cr3t-api-key-that-must-never-leak-0042"
DUMP_ENV = """
    import json, os, sys
    print("env", json.dumps(dict(os.environ)), flush=True)
    print("ready", os.getpid(), flush=True)
    sys.stdin.readline()
    """


def reporter_of(pwsup_pid: int) -> int:
    """The pid of pwsup's reporter: its child whose title starts with "pwsup reporter"."""
    found: list[int] = []

    def reporter_seen() -> bool:
        found[:] = [pid for pid in procs.children(pwsup_pid)
                    if (procs.cmdline(pid) or "").startswith("pwsup reporter")]
        return len(found) == 1

    procs.wait_until(reporter_seen, SLACK, "pwsup's reporter process")
    return found[0]


def raw_cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


@pytest.mark.parametrize("given_by", ["environment", "command-line"])
def test_api_key_never_leaks(start: Callable[..., Running], given_by: str) -> None:
    """At DEBUG level, the key is not in pwsup's output, not in the command's environment,
    and not in /proc/<pid>/cmdline of pwsup or its reporter (even when given with -k)."""
    with FakeCloudReactor(api_keys={SECRET_KEY: ApiKey("developer")}) as api:
        api.create_task(TASK)
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url})
        options = ["-l", "DEBUG", "--api-heartbeat-interval", "0.3", "--send-pid"]
        if given_by == "environment":
            env["PROC_WRAPPER_API_KEY"] = SECRET_KEY
        else:
            options += ["-k", SECRET_KEY]
        run = start(pwsup(child(DUMP_ENV), *options), env=env, stdin=subprocess.PIPE)
        child_env = json.loads(run.expect("env ")[len("env "):])
        command = run.expect_ready()
        api.wait_for(lambda r: r.get("status") == "RUNNING" and r.method == "PATCH"
                     and "pid" not in r.json, timeout=EVENT_TIMEOUT)  # a heartbeat went through
        reporter = reporter_of(run.pid)
        for pid in (run.pid, reporter):
            assert SECRET_KEY.encode() not in raw_cmdline(pid), (pid, raw_cmdline(pid))
        assert "PROC_WRAPPER_API_KEY" not in child_env
        assert all(SECRET_KEY not in value for value in child_env.values())
        assert command.alive()
        run.close_stdin()
        assert finished(run) == 0, run.describe()
        assert SECRET_KEY not in run.stdout
        assert SECRET_KEY not in run.stderr
        assert "DEBUG" in run.stderr, "the run did log at DEBUG level"
        # The key was really used: every request authenticated with it.
        assert all(r.header("Authorization") == f"Bearer {SECRET_KEY}" for r in api.requests)
        assert steps(api)[-1] == ("PATCH", "SUCCEEDED", 204)
        assert api.violations == []


def test_every_request_carries_the_protocol_headers(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """Bearer authorization, JSON content type and accept, a User-Agent, on every request."""
    run = start(pwsup(child("pass")), env=api_env(api))
    assert finished(run) == 0, run.describe()
    assert len(api.requests) == 2
    for r in api.requests:
        assert r.header("Authorization") == f"Bearer {api.api_key}"
        assert (r.header("Content-Type") or "").startswith("application/json")
        assert "application/json" in (r.header("Accept") or "")
        assert r.header("User-Agent")
    assert api.violations == []
