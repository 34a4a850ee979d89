"""Faults of the reporter's world: a start request whose answer is lost.

The class of fault: the server creates the execution and the connection drops before the
answer arrives, and a retry that meets a concurrency conflict caused by that very
execution. The outcome is always one execution on the server, reported to the end — never
a duplicate, never a RUNNING ghost left behind.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.bounds import EXIT_TIMEOUT
from helpers.fake_cloudreactor import (
    TASK_EXECUTIONS_PATH,
    FakeCloudReactor,
    Hang,
    Reset,
    Respond,
)
from helpers.runner import clean_env
from pwsup.api.adopt import find_ours, lookup_path, worth_looking

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from helpers.runner import Running

pytestmark = pytest.mark.hostile

PWSUP = str(Path(sys.executable).parent / "pwsup")
TASK = "faults-task"
PRINT_UUID = "import os; print('uuid', os.environ.get('PROC_WRAPPER_TASK_EXECUTION_UUID'))"


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with FakeCloudReactor() as fake:
        yield fake


def _run(start: Callable[..., Running], api: FakeCloudReactor, *options: str) -> Running:
    args = [PWSUP, "-n", TASK, "--api-retry-delay", "0.2", "--api-request-timeout", "2",
            "--api-task-execution-creation-error-timeout", "10",
            "--api-task-execution-creation-conflict-timeout", "10",
            "--api-task-execution-creation-conflict-retry-delay", "0.2",
            "--api-final-update-timeout", "10", *options,
            "--", sys.executable, "-c", PRINT_UUID]
    return start(args, env=clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                                      "PROC_WRAPPER_API_KEY": api.api_key}))


def _one_execution_reported(api: FakeCloudReactor, run: Running) -> None:
    assert run.wait(EXIT_TIMEOUT) == 0, run.describe()
    (uuid,) = api.executions
    assert api.execution(uuid)["status"] == "SUCCEEDED"
    assert f"uuid {uuid}" in run.stdout
    assert api.violations == []


@pytest.mark.parametrize("max_concurrency", [None, 1])
def test_a_created_execution_whose_answer_was_lost_is_adopted(
        api: FakeCloudReactor, start: Callable[..., Running],
        max_concurrency: int | None) -> None:
    api.create_task(TASK, max_concurrency=max_concurrency)
    api.script("POST", TASK_EXECUTIONS_PATH, Reset(process=True))
    run = _run(start, api)
    _one_execution_reported(api, run)
    assert [r.method for r in api.requests][:2] == ["POST", "GET"]


def test_a_start_still_unanswered_at_the_creation_deadline_is_looked_for_and_adopted(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """The server creates the execution and never answers; the request's own timeout is
    longer than the creation deadline, so the deadline ends the wait: the execution is
    looked for and adopted, not left RUNNING."""
    api.create_task(TASK)
    api.script("POST", TASK_EXECUTIONS_PATH, Hang(process=True))
    run = _run(start, api, "--api-request-timeout", "60",
               "--api-task-execution-creation-error-timeout", "1")
    _one_execution_reported(api, run)
    assert [r.method for r in api.requests][:2] == ["POST", "GET"]
    assert "is adopted" in run.stderr


def test_a_conflict_caused_by_our_own_execution_is_adopted(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """The first lookup fails too, so the retry meets our own execution at the limit: the
    409 is looked into and the execution adopted instead of waiting out the conflict."""
    api.create_task(TASK, max_concurrency=1)
    api.script("POST", TASK_EXECUTIONS_PATH, Reset(process=True))
    api.script("GET", TASK_EXECUTIONS_PATH, Respond(503))
    run = _run(start, api)
    _one_execution_reported(api, run)
    posts = [r.response_status for r in api.requests if r.method == "POST"]
    assert posts == [None, 409], api.requests


def test_a_conflict_with_another_execution_is_not_adopted(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    api.create_task(TASK, max_concurrency=1)
    other = api.create_execution(TASK, status="RUNNING")["uuid"]
    api.script("POST", TASK_EXECUTIONS_PATH, Respond(502))
    run = start([PWSUP, "-n", TASK, "--api-retry-delay", "0.2",
                 "--api-task-execution-creation-conflict-timeout", "1",
                 "--api-task-execution-creation-conflict-retry-delay", "0.3",
                 "--", sys.executable, "-c", PRINT_UUID],
                env=clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                               "PROC_WRAPPER_API_KEY": api.api_key}))
    assert run.wait(EXIT_TIMEOUT) == 75, run.describe()
    assert list(api.executions) == [other]
    assert any(r.method == "GET" for r in api.requests)
    assert api.violations == []


# -- the pure parts --------------------------------------------------------------------------

SENT = {"started_at": "2026-01-02T03:04:05.123456+00:00", "task": {"name": TASK},
        "hostname": "h1", "process_command": "run it"}
ROW = {"uuid": "u1", "status": "RUNNING", "started_at": "2026-01-02T03:04:05.123456Z",
       "task": {"uuid": "t1", "name": TASK}, "hostname": "h1", "process_command": "run it"}


@pytest.mark.parametrize("uuid", ["../../etc/passwd", "x\n\u001b[31mforged", "a" * 101, "a/b"])
def test_an_execution_uuid_pwsup_cannot_use_is_not_used(
        api: FakeCloudReactor, start: Callable[..., Running], uuid: str) -> None:
    """A uuid in the start answer that is not one (a path, a line break, a terminal escape,
    over 100 characters) never reaches a request path nor the command's environment: the
    command runs unreported, and the log says why."""
    api.script("POST", TASK_EXECUTIONS_PATH, Respond(201, body={"uuid": uuid}))
    run = _run(start, api)
    assert run.wait(EXIT_TIMEOUT) == 0, run.describe()
    assert "uuid None" in run.stdout, run.describe()
    assert "execution uuid pwsup cannot use" in run.stderr, run.describe()
    assert [r.method for r in api.requests] == ["POST"], run.describe()


def test_only_our_own_execution_matches() -> None:
    assert find_ours({"results": [ROW]}, SENT) == ROW
    assert find_ours([ROW], SENT) == ROW
    for change in ({"started_at": "2026-01-02T03:04:05.123457Z"}, {"hostname": "h2"},
                   {"status": "SUCCEEDED"}, {"task": {"name": "other"}},
                   {"process_command": "x"}, {"uuid": None}, {"started_at": "garbage"}):
        assert find_ours({"results": [{**ROW, **change}]}, SENT) is None, change
    for junk in (None, "text", {"results": "x"}, {"results": [1, None]}, 5):
        assert find_ours(junk, SENT) is None


def test_the_lookup_asks_for_running_executions_of_the_task() -> None:
    assert lookup_path({"uuid": "t 1"}) == (
        "/api/v1/task_executions/?status__in=RUNNING&task__uuid=t+1")
    assert lookup_path({"name": "n"}) == "/api/v1/task_executions/?status__in=RUNNING&search=n"
    assert [worth_looking(s, earlier_lost=False) for s in (None, 500, 502, 409, 400, 201)] == [
        True, True, True, False, False, False]
    assert worth_looking(409, earlier_lost=True)
