"""What an attempt cost, in the reporter's bodies: beside the command's own metadata."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pwsup.ipc import messages as m
from pwsup.supervisor.deadlines import Deadlines
from pwsup.supervisor.reporting.api_bodies import add_usage, attempt_fields
from pwsup.supervisor.reporting.api_updates import RunningUpdates

USAGE = {"user_seconds": 0.5, "system_seconds": 0.1, "max_rss_bytes": 1 << 26,
         "wall_seconds": 1.0}
ENDED = m.AttemptEnded(attempt=1, exit_code=3, timed_out=False, failed_attempts=1,
                       timed_out_attempts=0, will_retry=True, usage=USAGE,
                       total_usage=USAGE)


def test_a_failed_attempts_update_merges_its_cost_into_pending_metadata() -> None:
    """The command's pending other_runtime_metadata and pwsup's figures go in one object:
    neither replaces the other in the update after a failed attempt."""
    bodies: list[dict[str, Any]] = []

    def start(*args: Any, **kwargs: Any) -> object:
        bodies.append(args[3])
        return object()

    calls = SimpleNamespace(policy=SimpleNamespace(resume_delay=None, request_timeout=30.0),
                            start=start)
    log = SimpleNamespace(warning=print, debug=print, error=print, info=print)
    params = SimpleNamespace(api_heartbeat_interval=None, status_update_interval=None,
                             api_request_timeout=30.0)
    updates = RunningUpdates(params, calls, Deadlines(), log, print)  # type: ignore[arg-type]
    updates.begin("0c3a4d8e-0000-4000-8000-000000000000")
    updates.status({"other_runtime_metadata": {"step": 1}})
    assert bodies == []  # no interval: it waits for the next update
    updates.send(attempt_fields(ENDED, embedded=False))
    (body,) = bodies
    assert body["status"] == "RUNNING"
    assert body["exit_code"] == 3
    assert body["other_runtime_metadata"] == {
        "step": 1, "pwsup_usage": {"attempt": 1, **USAGE, "all_attempts": USAGE}}


def test_the_final_body_keeps_the_commands_metadata_and_its_own_key_loses() -> None:
    body: dict[str, Any] = {"other_runtime_metadata": {"step": 2, "pwsup_usage": "mine"}}
    exceeded = m.AttemptEnded(attempt=2, exit_code=143, timed_out=False, failed_attempts=2,
                              timed_out_attempts=0, will_retry=False, usage=USAGE,
                              memory_exceeded={"rss_bytes": 200 << 20,
                                               "limit_bytes": 100 << 20})
    add_usage(body, exceeded)
    assert body["other_runtime_metadata"]["step"] == 2
    figures = body["other_runtime_metadata"]["pwsup_usage"]
    assert figures["attempt"] == 2
    assert figures["memory_limit_exceeded"] == {"rss_bytes": 200 << 20,
                                                "limit_bytes": 100 << 20}
    assert body["last_status_message"] == ("memory limit exceeded: attempt 2 used 200.0 MiB "
                                           "resident, over the limit of 100.0 MiB")


def test_an_attempt_that_never_ran_adds_nothing() -> None:
    body: dict[str, Any] = {}
    add_usage(body, m.AttemptEnded(attempt=1, exit_code=127, timed_out=False,
                                   failed_attempts=1, timed_out_attempts=0, will_retry=False))
    assert body == {}
