"""The API retry policy and request bodies: pure functions and values.

Times are passed in as plain numbers: nothing here sleeps or reads a clock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from pwsup.api.body import start_body, task_object, whole
from pwsup.api.policy import (
    RETRY_AFTER_FLOOR,
    Decision,
    Kind,
    Outcome,
    RetryPolicy,
    Verdict,
    decide,
    retry_after_seconds,
)
from pwsup.config.loader import load

NOW = 1_700_000_000.0
"""A wall-clock time, for Retry-After dates."""
POLICY = RetryPolicy(retry_delay=7, conflict_delay=3, start_timeout=100, conflict_timeout=500,
                     update_timeout=60, final_timeout=40, shutdown_timeout=10,
                     request_timeout=5, resume_delay=120)


def params(*argv: str):  # type: ignore[no-untyped-def]
    loaded = load([*argv, "--", "true"], {})
    assert loaded.params is not None, loaded.errors
    return loaded.params


def http_date(seconds_from_now: float) -> str:
    when = datetime.fromtimestamp(NOW + seconds_from_now, tz=timezone.utc)
    return format_datetime(when, usegmt=True)


def early(kind: Kind, outcome: Outcome, **kwargs: bool) -> Decision:
    """The policy's decision one second into a request: plenty of time left."""
    return POLICY.next(kind, outcome, elapsed=1.0, now=NOW, **kwargs)


@pytest.mark.parametrize(("kind", "status", "verdict"), [
    (Kind.START, 201, Verdict.DONE), (Kind.UPDATE, 204, Verdict.DONE),
    (Kind.FINAL, 200, Verdict.DONE),
    (Kind.START, 409, Verdict.CONFLICT), (Kind.UPDATE, 409, Verdict.STOPPED),
    (Kind.FINAL, 409, Verdict.GIVE_UP), (Kind.START, 429, Verdict.RETRY),
    (Kind.START, 503, Verdict.RETRY), (Kind.FINAL, 500, Verdict.RETRY),
    (Kind.START, 400, Verdict.GIVE_UP), (Kind.START, 401, Verdict.GIVE_UP),
    (Kind.START, 403, Verdict.GIVE_UP), (Kind.START, 422, Verdict.GIVE_UP),
    (Kind.UPDATE, 404, Verdict.GIVE_UP),
])
def test_verdicts(kind: Kind, status: int, verdict: Verdict) -> None:
    """Each status class gets the documented treatment."""
    assert decide(kind, Outcome(status), retry_delay=7, conflict_delay=3,
                  now=NOW).verdict is verdict
    assert early(kind, Outcome(status)).verdict is verdict


def test_success_is_done_whatever_the_time() -> None:
    """A 2xx answer ends the request, even one that came after its budget."""
    for kind in Kind:
        late = POLICY.next(kind, Outcome(200), elapsed=10_000, now=NOW)
        assert late == Decision(Verdict.DONE)


def test_conflict_on_each_kind() -> None:
    """409: a start waits the conflict delay; an update means the server stopped the run;
    a final update means the server keeps its own final status."""
    start = early(Kind.START, Outcome(409))
    assert (start.verdict, start.delay, start.conflict) == (Verdict.CONFLICT, 3, True)
    update = early(Kind.UPDATE, Outcome(409))
    assert (update.verdict, update.conflict) == (Verdict.STOPPED, False)
    final = early(Kind.FINAL, Outcome(409))
    assert (final.verdict, final.exhausted) == (Verdict.GIVE_UP, False)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_after_is_honoured(status: int) -> None:
    """429/502/503/504 wait Retry-After, in seconds or as an HTTP date, else the retry
    delay."""
    assert early(Kind.UPDATE, Outcome(status)).delay == 7
    assert early(Kind.UPDATE, Outcome(status, retry_after="2")).delay == 2
    dated = early(Kind.UPDATE, Outcome(status, retry_after=http_date(30)))
    assert dated.verdict is Verdict.RETRY
    assert dated.delay == pytest.approx(30, abs=1)
    assert early(Kind.UPDATE, Outcome(status, retry_after="junk")).delay == 7


def test_other_server_errors_and_network_errors_wait_the_retry_delay() -> None:
    """Other 5xx ignore Retry-After; a network error is retried like one."""
    other = early(Kind.FINAL, Outcome(500, retry_after="2"))
    assert (other.verdict, other.delay, other.reason) == (Verdict.RETRY, 7, "HTTP 500")
    reset = early(Kind.UPDATE, Outcome(None, error="ConnectionError: reset"))
    assert (reset.verdict, reset.delay) == (Verdict.RETRY, 7)
    assert reset.reason == "ConnectionError: reset"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_give_up_at_once(status: int) -> None:
    """A retry cannot fix a 4xx: given up at once, not as an exhausted budget."""
    for kind in Kind:
        decision = early(kind, Outcome(status))
        assert decision == Decision(Verdict.GIVE_UP, reason=f"HTTP {status}")


def test_a_wait_is_cut_to_end_at_the_deadline() -> None:
    """With 4 s left, a 7 s retry delay becomes 4 s, and that attempt is the last one."""
    cut = POLICY.next(Kind.UPDATE, Outcome(503), elapsed=56, now=NOW)
    assert (cut.verdict, cut.delay, cut.last_try) == (Verdict.RETRY, 4, True)
    whole_wait = POLICY.next(Kind.UPDATE, Outcome(503), elapsed=50, now=NOW)
    assert (whole_wait.delay, whole_wait.last_try) == (7, False)
    dated = POLICY.next(Kind.UPDATE, Outcome(429, retry_after=http_date(300)), elapsed=50,
                        now=NOW)
    assert (dated.delay, dated.last_try) == (10, True)


def test_out_of_time_gives_up_as_exhausted() -> None:
    """No retry starts after the budget is spent."""
    late = POLICY.next(Kind.UPDATE, Outcome(None, error="timeout"), elapsed=60, now=NOW)
    assert late == Decision(Verdict.GIVE_UP, reason="timeout; out of time to retry",
                            exhausted=True)


def test_a_conflict_switches_the_start_to_the_conflict_timeout() -> None:
    """The start request's error timeout (100 s) gives way to the conflict timeout (500 s)
    from its first 409 on, also for later errors of other kinds."""
    assert POLICY.next(Kind.START, Outcome(503), elapsed=150, now=NOW).exhausted
    conflict = POLICY.next(Kind.START, Outcome(409), elapsed=150, now=NOW)
    assert (conflict.verdict, conflict.delay) == (Verdict.CONFLICT, 3)
    after = POLICY.next(Kind.START, Outcome(503), elapsed=150, now=NOW, conflicted=True)
    assert (after.verdict, after.delay) == (Verdict.RETRY, 7)
    over = POLICY.next(Kind.START, Outcome(409), elapsed=500, now=NOW, conflicted=True)
    assert (over.verdict, over.conflict, over.exhausted) == (Verdict.GIVE_UP, True, True)
    assert over.reason == "concurrency conflict; out of time to retry"


def test_stop_retrying_gives_up_without_exhaustion() -> None:
    """When the run no longer wants the request retried, the answer in hand is the last."""
    decision = early(Kind.START, Outcome(409), stop_retrying=True)
    assert decision == Decision(Verdict.GIVE_UP, reason="concurrency conflict", conflict=True)
    assert early(Kind.START, Outcome(201), stop_retrying=True).verdict is Verdict.DONE


def test_budgets() -> None:
    """Each kind has its own budget; a final report at shutdown gets at most the cap."""
    assert POLICY.budget(Kind.START) == 100
    assert POLICY.budget(Kind.START, conflicted=True) == 500
    assert POLICY.budget(Kind.UPDATE) == 60
    assert POLICY.budget(Kind.FINAL) == 40
    assert POLICY.budget(Kind.FINAL, shutdown=True) == 10
    unlimited = RetryPolicy(retry_delay=7, shutdown_timeout=10)
    assert unlimited.budget(Kind.FINAL) is None
    assert unlimited.budget(Kind.FINAL, shutdown=True) == 10
    assert unlimited.next(Kind.UPDATE, Outcome(503), elapsed=1e6, now=NOW).delay == 7


def test_shutdown_cap_shortens_the_final_report() -> None:
    """At shutdown, the final report's retries end at the cap, not the final timeout."""
    cut = POLICY.next(Kind.FINAL, Outcome(503), elapsed=8, now=NOW, shutdown=True)
    assert (cut.delay, cut.last_try) == (2, True)
    assert POLICY.next(Kind.FINAL, Outcome(503), elapsed=8, now=NOW).delay == 7


def test_answer_wait() -> None:
    """An attempt is waited for until the deadline; the last one gets one request timeout
    even at (or past) it; without a budget there is no limit here."""
    assert POLICY.answer_wait(Kind.UPDATE, elapsed=20) == 40
    assert POLICY.answer_wait(Kind.UPDATE, elapsed=60) == 0
    assert POLICY.answer_wait(Kind.UPDATE, elapsed=59, last_try=True) == 5
    assert POLICY.answer_wait(Kind.UPDATE, elapsed=50, last_try=True) == 10
    assert POLICY.answer_wait(Kind.START, elapsed=200, conflicted=True) == 300
    assert RetryPolicy().answer_wait(Kind.UPDATE, elapsed=5) is None


def test_from_params() -> None:
    """The policy carries the options' values."""
    p = params("--api-retry-delay", "4", "--api-error-timeout", "30",
               "--api-task-execution-creation-conflict-retry-delay", "6",
               "--api-resume-delay", "-1")
    policy = RetryPolicy.from_params(p)
    assert policy.retry_delay == 4
    assert policy.update_timeout == 30
    assert policy.conflict_delay == 6
    assert policy.resume_delay is None
    assert policy.shutdown_timeout == p.shutdown_report_timeout
    assert policy.request_timeout == p.api_request_timeout


def test_retry_after_forms() -> None:
    """Retry-After is seconds or an HTTP date; junk is ignored; long waits are capped."""
    assert retry_after_seconds(http_date(30), now=NOW) == pytest.approx(30, abs=1)
    assert retry_after_seconds("1.5", now=NOW) == 1.5
    assert retry_after_seconds("junk", now=NOW) is None
    assert retry_after_seconds(None, now=NOW) is None
    assert retry_after_seconds("99999", now=NOW) == 600
    assert retry_after_seconds("inf", now=NOW) == 600


@pytest.mark.parametrize("value", ["-5", "nan", "-inf", http_date(-30)])
def test_a_retry_after_that_is_no_delay_gives_the_retry_delay(value: str) -> None:
    """Negative, NaN, or a date already past (a server clock behind pwsup's): not a delay,
    so the retry delay applies rather than a retry at once, over and over."""
    assert retry_after_seconds(value, now=NOW) is None
    assert early(Kind.START, Outcome(503, retry_after=value)).delay == 7


def test_retry_after_zero_waits_the_floor() -> None:
    """`Retry-After: 0` means at once; pwsup still sends at most ten requests a second."""
    assert retry_after_seconds("0", now=NOW) == RETRY_AFTER_FLOOR == 0.1
    assert early(Kind.UPDATE, Outcome(429, retry_after="0")).delay == 0.1


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
