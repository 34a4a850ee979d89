"""The API retry policy and request bodies: pure functions."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from pwsup.api.body import start_body, task_object, whole
from pwsup.api.policy import Kind, Outcome, Verdict, decide, retry_after_seconds
from pwsup.config.loader import load


def params(*argv: str):  # type: ignore[no-untyped-def]
    loaded = load([*argv, "--", "true"], {})
    assert loaded.params is not None, loaded.errors
    return loaded.params


@pytest.mark.parametrize(("kind", "status", "verdict"), [
    (Kind.START, 201, Verdict.DONE), (Kind.UPDATE, 204, Verdict.DONE),
    (Kind.START, 409, Verdict.CONFLICT), (Kind.UPDATE, 409, Verdict.STOPPED),
    (Kind.FINAL, 409, Verdict.GIVE_UP), (Kind.START, 429, Verdict.RETRY),
    (Kind.START, 503, Verdict.RETRY), (Kind.FINAL, 500, Verdict.RETRY),
    (Kind.START, 400, Verdict.GIVE_UP), (Kind.START, 401, Verdict.GIVE_UP),
    (Kind.START, 403, Verdict.GIVE_UP), (Kind.START, 422, Verdict.GIVE_UP),
    (Kind.UPDATE, 404, Verdict.GIVE_UP),
])
def test_verdicts(kind: Kind, status: int, verdict: Verdict) -> None:
    """Each status class gets the documented treatment."""
    assert decide(kind, Outcome(status), retry_delay=7, conflict_delay=3).verdict is verdict


def test_delays() -> None:
    """Network errors wait the retry delay, conflicts the conflict delay, 429 Retry-After."""
    assert decide(Kind.UPDATE, Outcome(None, error="reset"), retry_delay=7,
                  conflict_delay=3).delay == 7
    assert decide(Kind.START, Outcome(409), retry_delay=7, conflict_delay=3).delay == 3
    assert decide(Kind.START, Outcome(429, retry_after="2"), retry_delay=7,
                  conflict_delay=3).delay == 2
    assert decide(Kind.START, Outcome(503), retry_delay=7, conflict_delay=3).delay == 7


def test_retry_after_forms() -> None:
    """Retry-After is seconds or an HTTP date; junk is ignored; long waits are capped."""
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, tz=timezone.utc), usegmt=True)
    assert retry_after_seconds(date, now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds("junk") is None
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("99999") == 600


def test_whole_seconds() -> None:
    """Durations go out as whole seconds (rounded up), -1 for none."""
    assert whole(2.1) == 3
    assert whole(None) == -1
    assert whole(None, None) is None


def test_start_body_fields() -> None:
    """The start body carries the run's settings with upstream's encodings."""
    p = params("-n", "job", "-t", "10.5", "-r", "-1", "--max-concurrency", "-1",
               "--build-task-execution-uuid", "b1", "--task-instance-metadata", '{"x": 1}')
    body, _ = start_body(p, started_at="T", command=["a", "b"], attach=False, log_level="INFO")
    assert body["status"] == "RUNNING"
    assert body["process_timeout_seconds"] == 11
    assert body["process_max_retries"] == -1
    assert body["task_max_concurrency"] == -1
    assert body["build"] == {"task_execution": {"uuid": "b1"}}
    assert body["other_instance_metadata"] == {"x": 1}
    assert body["process_command"] == "a b"
    assert body["task"]["name"] == "job"
    assert body["heartbeat_interval_seconds"] == 300
    attach, _ = start_body(p, started_at="T", command=None, attach=True, log_level="INFO")
    assert "task" not in attach


def test_auto_created_task_never_gets_a_heartbeat_the_server_rejects() -> None:
    """An auto-created Task with heartbeats off or under 10 s omits the field, with a note."""
    for interval in ("-1", "5"):
        p = params("-n", "job", "-a", "-d", "prod", "--api-heartbeat-interval", interval)
        task, notes = task_object(p, {})
        assert "heartbeat_interval_seconds" not in task
        assert notes
        assert task["run_environment"] == {"name": "prod"}
        assert task["was_auto_created"] is True
        assert task["passive"] is True
    ok, notes = task_object(params("-n", "job", "-a", "-d", "prod"), {})
    assert ok["heartbeat_interval_seconds"] == 300
    assert notes == []


def test_task_passive_and_props() -> None:
    """--force-task-active and auto-create props shape the task object."""
    p = params("-n", "j", "-a", "--force-task-active", "--auto-create-task-run-environment-uuid",
               "re1", "--auto-create-task-props", '{"description": "d", "name": "ignored"}')
    task, _ = task_object(p, {"execution_method_type": "Unknown"})
    assert task["passive"] is False
    assert task["description"] == "d"
    assert task["name"] == "j"
    assert task["run_environment"] == {"uuid": "re1"}
    assert task["execution_method_type"] == "Unknown"
