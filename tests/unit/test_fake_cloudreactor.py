"""Self-test of the fake CloudReactor API server (tests/helpers/fake_cloudreactor/).

Other tests trust the fake to behave like the real server and to catch protocol mistakes,
so its rules are pinned here over real HTTP with `requests`: creation and task resolution,
the concurrency 409, the status-transition rules including the manual-stop 409,
authentication, the protocol checker, and every scripted fault.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from helpers.fake_cloudreactor import (
    TASK_EXECUTION_PATH,
    TASK_EXECUTIONS_PATH,
    ApiKey,
    FakeCloudReactor,
    Hang,
    Malformed,
    Passthrough,
    Reset,
    Respond,
    Slow,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

KEYS: dict[str, ApiKey | str] = {
    "dev-key": "developer",
    "task-key": "task",
    "observer-key": "observer",
    "off-key": ApiKey(enabled=False),
}
STARTED_AT = "2026-05-16T10:00:00.123456+00:00"


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with FakeCloudReactor(api_keys=KEYS) as fake:
        yield fake


def headers(key: str | None = "dev-key", scheme: str = "Bearer") -> dict[str, str]:
    """The headers the wrapper sends with every request: JSON both ways, a bearer key, a
    User-Agent."""
    out = {"Content-Type": "application/json", "Accept": "application/json",
           "User-Agent": "pwsup-test/1"}
    if key is not None:
        out["Authorization"] = f"{scheme} {key}"
    return out


def start_body(name: str = "job", *, auto: bool = True, **task: Any) -> dict[str, Any]:
    """A start body shaped like the one proc_wrapper 6.0.2 POSTs to the real server, trimmed."""
    return {
        "status": "RUNNING", "started_at": STARTED_AT, "embedded_mode": False,
        "task_version_number": None, "process_command": "echo hello",
        "process_max_retries": 0, "process_termination_grace_period_seconds": 30,
        "task_max_concurrency": None, "max_conflicting_age_seconds": None,
        "prevent_offline_execution": False, "wrapper_log_level": "INFO",
        "wrapper_family": "CloudReactor python proc_wrapper", "wrapper_version": "6.0.2",
        "api_request_timeout_seconds": 30, "heartbeat_interval_seconds": 10,
        "api_managed_probability": 1.0, "is_service": False, "schedule": "",
        "execution_method_type": "Unknown", "infrastructure_type": "Unknown",
        "task": {"name": name, "was_auto_created": auto, "passive": True,
                 "max_concurrency": -1, "run_environment": {"name": "local"},
                 "heartbeat_interval_seconds": 10, "api_managed_probability": 1.0, **task},
    }


def post(api: FakeCloudReactor, body: Any, key: str | None = "dev-key",
         **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", headers(key))
    kwargs.setdefault("timeout", 5)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(api.url(TASK_EXECUTIONS_PATH), data=data, **kwargs)


def patch(api: FakeCloudReactor, execution_uuid: str, body: Any, *, content: bool = False,
          key: str | None = "dev-key", slash: bool = True, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", headers(key))
    kwargs.setdefault("timeout", 5)
    path = f"/api/v1/task_executions/{execution_uuid}" + ("/" if slash else "")
    if not content:
        path += "?content=false"
    return requests.patch(api.url(path), data=json.dumps(body), **kwargs)


def start(api: FakeCloudReactor, name: str = "job", **task: Any) -> str:
    response = post(api, start_body(name, **task))
    assert response.status_code == 201, response.text
    return str(response.json()["uuid"])


# ------------------------------------------------------------------------- the server


def test_create_auto_creates_the_task_and_returns_the_execution(
        api: FakeCloudReactor) -> None:
    response = post(api, start_body("smoke", max_concurrency=3))

    assert response.status_code == 201
    execution = response.json()
    assert set(execution) >= {"uuid", "url", "task", "status", "started_at", "started_by",
                              "last_heartbeat_at", "api_base_url", "process_command"}
    assert execution["status"] == "RUNNING"
    assert execution["started_by"] == "exampleuser"
    assert execution["started_at"] == "2026-05-16T10:00:00.123456Z"  # DRF renders UTC as Z
    assert execution["last_heartbeat_at"] is not None
    assert execution["finished_at"] is None
    assert execution["process_command"] == "echo hello"
    assert execution["api_base_url"] == api.base_url
    assert execution["managed_probability"] is None  # api_managed_probability is ignored
    assert "wrapper_family" not in execution
    assert execution["auto_created_task_properties"]["name"] == "smoke"
    assert "run_environment" not in execution["auto_created_task_properties"]

    task = api.task("smoke")
    assert execution["task"] == {"uuid": task["uuid"], "url": task["url"], "name": "smoke"}
    assert task["max_concurrency"] == 3
    assert task["run_environment"]["name"] == "local"
    assert api.executions[execution["uuid"]] == execution
    [recorded] = api.requests
    assert (recorded.method, recorded.path, recorded.response_status) == (
        "POST", TASK_EXECUTIONS_PATH, 201)
    assert recorded.execution_uuid == execution["uuid"]
    assert recorded.header("authorization") == "Bearer dev-key"
    assert recorded.json["task"]["name"] == "smoke"
    assert recorded.behaviour is None
    assert api.violations == []


def test_heartbeats_and_final_update_are_stored_like_the_server(
        api: FakeCloudReactor) -> None:
    execution_uuid = start(api)

    heartbeat = patch(api, execution_uuid, {
        "status": "RUNNING", "success_count": 10, "last_status_message": "step 1 ",
        "other_runtime_metadata": {"step": 1, "phase": {"a": 1}}, "pid": 1234, "foo": "bar"})
    assert heartbeat.status_code == 204
    assert heartbeat.content == b""
    no_slash = patch(api, execution_uuid, {
        "status": "RUNNING", "other_runtime_metadata": {"phase": {"b": 2}}}, slash=False)
    assert no_slash.status_code == 204
    final = patch(api, execution_uuid, {
        "status": "FAILED", "failed_attempts": 1, "exit_code": 3,
        "finished_at": "2026-05-16T12:00:00+02:00", "debug_log_tail": "hello\nbye\n"})
    assert final.status_code == 204

    stored = api.execution(execution_uuid)
    assert stored["status"] == "FAILED"
    assert (stored["exit_code"], stored["failed_attempts"], stored["success_count"]) == (3, 1, 10)
    assert stored["finished_at"] == "2026-05-16T10:00:00Z"
    assert stored["debug_log_tail"] == "hello\nbye"
    assert stored["last_status_message"] == "step 1"
    assert stored["other_runtime_metadata"] == {"step": 1, "phase": {"a": 1, "b": 2}}
    assert "pid" not in stored
    assert "foo" not in stored
    assert [r.method for r in api.requests_for(execution_uuid)] == ["POST"] + ["PATCH"] * 3
    assert [b["status"] for b in api.bodies("PATCH")] == ["RUNNING", "RUNNING", "FAILED"]
    assert api.bodies("PATCH", TASK_EXECUTIONS_PATH) == []
    assert api.violations == []


def test_attach_to_a_precreated_execution_answers_200_with_json(api: FakeCloudReactor) -> None:
    created = api.create_execution("dashboard-task")
    assert created["status"] == "MANUALLY_STARTED"

    body = {k: v for k, v in start_body().items() if k != "task"}
    response = patch(api, created["uuid"], body, content=True)

    assert response.status_code == 200
    assert response.json()["uuid"] == created["uuid"]
    assert response.json()["status"] == "RUNNING"
    assert response.json()["task"]["name"] == "dashboard-task"
    assert api.violations == []


def test_unknown_execution_is_404(api: FakeCloudReactor) -> None:
    response = patch(api, "0b4c3e7e-8f3f-4f39-9b1e-3d2f6f8a9b10", {"status": "RUNNING"})

    assert response.status_code == 404
    assert response.json() == {"detail": "No TaskExecution matches the given query."}


def test_unknown_task_without_auto_create_is_422(api: FakeCloudReactor) -> None:
    response = post(api, start_body("nobody", auto=False))

    assert response.status_code == 422
    body = response.json()
    assert body["task"] == ["Task does not exist"]
    assert body["error_class"] == "UnprocessableEntity"
    assert "error_message" in body
    assert api.violations == []


def test_task_found_by_uuid_and_a_different_name_is_422(api: FakeCloudReactor) -> None:
    task = api.create_task("named", max_concurrency=2)
    by_uuid = start_body("named", auto=False)
    by_uuid["task"] = {"uuid": task["uuid"], "was_auto_created": False, "passive": True}
    assert post(api, by_uuid).status_code == 201

    by_uuid["task"]["name"] = "wrong"
    response = post(api, by_uuid)
    assert response.status_code == 422
    assert response.json()["detail"] == f"Task {task['uuid']} is named 'named', not 'wrong'"


def test_max_concurrency_conflict_is_409_with_an_empty_body(api: FakeCloudReactor) -> None:
    first = start(api, "single", max_concurrency=1)

    body = start_body("single", max_concurrency=1)
    body["max_conflicting_age_seconds"] = 1  # the server never reads it
    conflict = post(api, body)
    assert conflict.status_code == 409
    assert conflict.content == b""
    assert "Retry-After" not in conflict.headers
    final_status = start_body("single", max_concurrency=1)
    final_status["status"] = "SUCCEEDED"  # checked whatever the requested status
    assert post(api, final_status).status_code == 409

    # Only the Task's max_concurrency counts, and it is updated before the check.
    assert start(api, "single", max_concurrency=2)
    api.create_execution("single")  # MANUALLY_STARTED does not count
    assert post(api, start_body("single", max_concurrency=2)).status_code == 409

    assert patch(api, first, {"status": "SUCCEEDED", "exit_code": 0}).status_code == 204
    assert post(api, start_body("single", max_concurrency=2)).status_code == 201
    assert api.violations == []


def test_execution_level_task_max_concurrency_is_ignored(api: FakeCloudReactor) -> None:
    start(api, "unlimited")
    body = start_body("unlimited")
    body["task_max_concurrency"] = 1
    assert post(api, body).status_code == 201


def test_manual_stop_answers_the_next_heartbeat_with_409_and_the_execution(
        api: FakeCloudReactor) -> None:
    execution_uuid = start(api)
    api.mark_stopped(execution_uuid)
    assert api.execution(execution_uuid)["status"] == "STOPPING"
    assert api.execution(execution_uuid)["killed_by"] == "exampleuser"

    stop = patch(api, execution_uuid, {"status": "RUNNING"})
    assert stop.status_code == 409
    assert stop.json()["uuid"] == execution_uuid
    assert stop.json()["status"] == "STOPPED"
    assert stop.json()["finished_at"] is not None
    assert stop.json()["kill_finished_at"] is not None
    assert stop.json()["stop_reason"] is None

    again = patch(api, execution_uuid, {"status": "RUNNING"})
    assert again.status_code == 409
    assert again.json()["status"] == "Status cannot be set to RUNNING after STOPPED"
    assert again.json()["error_class"] == "ValidationError"
    assert api.violations == []


@pytest.mark.parametrize(("stored", "requested", "code", "result"), [
    ("STOPPING", "FAILED", 204, "STOPPED"),
    ("STOPPING", "ABORTED", 204, "STOPPED"),
    ("STOPPING", "SUCCEEDED", 204, "SUCCEEDED"),
    ("FAILED", "FAILED", 204, "FAILED"),
    ("FAILED", "SUCCEEDED", 409, "FAILED"),
    ("FAILED", "RUNNING", 409, "FAILED"),
    ("MANUALLY_STARTED", "RUNNING", 204, "RUNNING"),
    ("ABANDONED", "RUNNING", 409, "ABANDONED"),
    ("RUNNING", "STOPPING", 204, "STOPPING"),
])
def test_status_transition_rules(api: FakeCloudReactor, stored: str, requested: str,
                                 code: int, result: str) -> None:
    execution_uuid = start(api)
    api.set_status(execution_uuid, stored)

    response = patch(api, execution_uuid, {"status": requested})

    assert response.status_code == code, response.text
    if code == 409:
        assert response.json()["status"] == (
            f"Status cannot be set to {requested} after {stored}")
    assert api.execution(execution_uuid)["status"] == result


def test_write_once_fields_keep_their_first_value(api: FakeCloudReactor) -> None:
    execution_uuid = start(api)
    patch(api, execution_uuid, {"status": "FAILED", "finished_at": "2026-05-16T11:00:00Z"})
    patch(api, execution_uuid, {"status": "FAILED", "finished_at": "2026-05-16T12:00:00Z",
                                "started_at": "2026-05-16T09:00:00Z", "exit_code": 5})

    stored = api.execution(execution_uuid)
    assert stored["finished_at"] == "2026-05-16T11:00:00Z"
    assert stored["started_at"] == "2026-05-16T10:00:00.123456Z"
    assert stored["exit_code"] == 5


# ------------------------------------------------------------------------- authentication


def test_missing_authorization_is_401_and_a_violation(api: FakeCloudReactor) -> None:
    response = post(api, start_body(), key=None)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "error_code": "not_authenticated", "error_class": "NotAuthenticated",
        "error_message": "Authentication credentials were not provided."}
    assert api.violations == [f"POST {TASK_EXECUTIONS_PATH}: no Authorization header"]


@pytest.mark.parametrize(("key", "code", "detail"), [
    ("unknown-key", 401, "Invalid token."),
    ("off-key", 403, "Token is deactivated"),
    ("task-key", 403, "Insufficient Group access level"),  # auto-creating needs Developer
])
def test_bad_keys_get_the_servers_errors(api: FakeCloudReactor, key: str, code: int,
                                         detail: str) -> None:
    response = post(api, start_body(), key=key)

    assert response.status_code == code
    assert response.json()["detail"] == detail
    assert response.json()["error_code"] in ("authentication_failed", "permission_denied")
    assert {"error_class", "error_message"} <= set(response.json())
    assert api.violations == []
    assert api.executions == {}


def test_task_level_key_starts_and_stops_an_existing_task(api: FakeCloudReactor) -> None:
    api.create_task("existing")
    response = post(api, start_body("existing", auto=False), key="task-key")
    assert response.status_code == 201
    execution_uuid = response.json()["uuid"]

    assert patch(api, execution_uuid, {"status": "STOPPING"}, key="task-key",
                 content=True).json()["killed_by"] == "exampleuser"
    assert patch(api, execution_uuid, {"status": "RUNNING"}, key="observer-key",
                 ).status_code == 403


def test_token_scheme_is_accepted(api: FakeCloudReactor) -> None:
    response = post(api, start_body(), headers=headers("dev-key", scheme="Token"))

    assert response.status_code == 201
    assert api.violations == []


# ------------------------------------------------------------------------- protocol checks


@pytest.mark.parametrize(("change", "violation"), [
    ({"process_max_retries": "3"}, "process_max_retries: must be an integer"),
    ({"task_max_concurrency": "2"}, "task_max_concurrency: must be an integer"),
    ({"exit_code": True}, "exit_code: must be an integer"),
    ({"status": "BOGUS"}, "must be one of the server's status names"),
    ({"status": "running"}, "must be one of the server's status names"),
    ({"started_at": "2026-05-16T10:00:00"}, "started_at: must be an ISO-8601 date-time"),
    ({"started_at": "yesterday"}, "started_at: must be an ISO-8601 date-time"),
    ({"embedded_mode": "false"}, "embedded_mode: must be a boolean"),
    ({"stop_reason": "BORED"}, "unknown stop reason"),
    ({"status": None}, "must be one of the server's status names"),
])
def test_wrongly_typed_start_fields_are_400_and_violations(
        api: FakeCloudReactor, change: dict[str, Any], violation: str) -> None:
    response = post(api, {**start_body(), **change})

    assert response.status_code == 400
    assert response.json()["error_class"] == "ValidationError"
    [recorded] = api.violations
    assert violation in recorded
    assert api.requests[0].violations == (recorded,)
    assert api.executions == {}


USAGE = {"attempt": 1, "user_seconds": 0.5, "system_seconds": 0.1, "max_rss_bytes": 1 << 26,
         "wall_seconds": 1.0}


@pytest.mark.parametrize(("usage", "violation"), [
    ("fast", "pwsup_usage: must be an object"),
    ({**USAGE, "attempt": 0}, "pwsup_usage.attempt: must be an attempt number"),
    ({**USAGE, "user_seconds": -1}, "pwsup_usage.user_seconds: must be a number >= 0"),
    ({**USAGE, "max_rss_bytes": 1.5}, "pwsup_usage.max_rss_bytes: must be a number >= 0"),
    ({k: v for k, v in USAGE.items() if k != "wall_seconds"},
     "pwsup_usage.wall_seconds: must be a number >= 0"),
    ({**USAGE, "all_attempts": {"user_seconds": 1}},
     "pwsup_usage.all_attempts.system_seconds: must be a number >= 0"),
    ({**USAGE, "memory_limit_exceeded": {"rss_bytes": 1, "limit_bytes": 2}},
     "pwsup_usage.memory_limit_exceeded: must be"),
])
def test_what_an_attempt_cost_is_checked(api: FakeCloudReactor, usage: Any,
                                         violation: str) -> None:
    """pwsup's figures (other_runtime_metadata.pwsup_usage, docs/protocol.md) have a
    shape the fake checks; a good one is stored like any runtime metadata."""
    execution_uuid = start(api)
    good = patch(api, execution_uuid, {"status": "RUNNING",
                                       "other_runtime_metadata": {"pwsup_usage": USAGE}})
    assert good.status_code == 204
    assert api.violations == []
    bad = patch(api, execution_uuid, {"status": "RUNNING",
                                      "other_runtime_metadata": {"pwsup_usage": usage}})
    assert bad.status_code == 400
    assert any(violation in recorded for recorded in api.violations), api.violations
    assert api.execution(execution_uuid)["other_runtime_metadata"] == {"pwsup_usage": USAGE}


def test_missing_or_wrong_headers_are_violations(api: FakeCloudReactor) -> None:
    bad = {"Authorization": "Bearer dev-key", "Content-Type": "text/plain",
           "Accept": "*/*", "User-Agent": ""}
    response = post(api, start_body(), headers=bad)

    assert response.status_code == 400
    violations = "\n".join(api.violations)
    assert "Content-Type must be application/json" in violations
    assert "Accept must include application/json" in violations
    assert "no User-Agent header" in violations
    assert response.json()["non_field_errors"]


@pytest.mark.parametrize(("body", "violation"), [
    (b'{"status": "RUNNING",', "the body is not valid JSON"),
    (b'{"status": NaN}', "the body is not valid JSON"),
    (b"[]", "the body must be a JSON object"),
    (b"\xff\xfe", "the body is not UTF-8"),
])
def test_unparsable_bodies_are_violations(api: FakeCloudReactor, body: bytes,
                                          violation: str) -> None:
    response = post(api, body)

    assert response.status_code == 400
    assert violation in api.violations[0]


def test_patch_checks_its_own_fields(api: FakeCloudReactor) -> None:
    execution_uuid = start(api)
    response = patch(api, execution_uuid, {"status": "FAILED", "failed_attempts": "1",
                                           "finished_at": "2026-05-16 12:00:00"})
    assert response.status_code == 400
    assert len(api.violations) == 2
    assert api.execution(execution_uuid)["status"] == "RUNNING"

    api.clear_records()
    assert patch(api, execution_uuid, {"exit_code": 0}).status_code == 400
    assert "status: This field is required" in api.violations[0]


def test_auto_created_task_with_short_heartbeat_is_rejected_like_the_server(
        api: FakeCloudReactor) -> None:
    response = post(api, start_body(heartbeat_interval_seconds=-1))

    assert response.status_code == 400
    body = response.json()
    assert body["heartbeat_interval_seconds"] == [
        "Ensure this value is greater than or equal to 10."]
    assert body["error_class"] == "ValidationError"
    assert "heartbeat_interval_seconds" in api.violations[0]


def test_existing_task_accepts_a_short_heartbeat(api: FakeCloudReactor) -> None:
    api.create_task("existing")
    body = start_body("existing", auto=False, heartbeat_interval_seconds=5)
    body["heartbeat_interval_seconds"] = 5

    assert post(api, body).status_code == 201
    assert api.violations == []


def test_unknown_endpoint_is_404_and_a_violation(api: FakeCloudReactor) -> None:
    response = requests.get(api.url("/api/v1/tasks/"), headers=headers(), timeout=5)

    assert response.status_code == 404
    assert "unknown endpoint" in api.violations[0]


def test_violations_can_be_answered_normally(api: FakeCloudReactor) -> None:
    with FakeCloudReactor(api_keys=KEYS, reject_violations=False) as lenient:
        response = post(lenient, {**start_body(), "process_max_retries": "3"})
        assert response.status_code == 201
        assert len(lenient.violations) == 1


# ------------------------------------------------------------------------- scripted faults


def test_scripted_responses_are_used_in_order_then_normal_answers_resume(
        api: FakeCloudReactor) -> None:
    api.script("POST", TASK_EXECUTIONS_PATH, Respond(409),
               Respond(429, headers={"Retry-After": "1"}), Respond(503), Passthrough(),
               Respond(500))
    assert api.pending_scripts == 5

    conflict = post(api, start_body())
    assert (conflict.status_code, conflict.content) == (409, b"")
    throttled = post(api, start_body())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error_class"] == "Throttled"
    unavailable = post(api, start_body())
    assert unavailable.status_code == 503
    assert "503" in unavailable.text
    assert post(api, start_body()).status_code == 201
    assert post(api, start_body()).json()["error_class"] == "KeyError"
    assert post(api, start_body()).status_code == 201
    assert api.pending_scripts == 0

    assert [(r.behaviour, r.response_status) for r in api.requests] == [
        ("Respond", 409), ("Respond", 429), ("Respond", 503), ("Passthrough", 201),
        ("Respond", 500), (None, 201)]
    assert len(api.executions) == 2  # scripted answers change nothing
    assert api.violations == []


@pytest.mark.parametrize(("status", "key", "value"), [
    (400, "error_class", "ValidationError"),
    (401, "error_code", "authentication_failed"),
    (403, "detail", "Insufficient Group access level"),
    (404, "detail", "No TaskExecution matches the given query."),
    (422, "task", ["Task does not exist"]),
    (500, "error_class", "KeyError"),
])
def test_scripted_error_statuses_carry_the_real_body_shape(
        api: FakeCloudReactor, status: int, key: str, value: Any) -> None:
    execution_uuid = start(api)
    api.script("PATCH", TASK_EXECUTION_PATH, Respond(status))

    response = patch(api, execution_uuid, {"status": "RUNNING"})

    assert response.status_code == status
    assert response.json()[key] == value
    assert "error_message" in response.json() or status == 404
    assert api.requests_for(execution_uuid)[-1].behaviour == "Respond"


@pytest.mark.parametrize("status", [502, 503, 504])
def test_scripted_gateway_errors_are_proxy_pages(api: FakeCloudReactor, status: int) -> None:
    api.script("*", None, Respond(status))

    response = post(api, start_body())

    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert str(status) in response.text


def test_hang_is_released_by_the_client_timeout_and_release_hangs(
        api: FakeCloudReactor) -> None:
    execution_uuid = start(api)
    api.script("PATCH", TASK_EXECUTION_PATH, Hang())

    began = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        patch(api, execution_uuid, {"status": "RUNNING"}, timeout=(2, 0.3))
    assert time.monotonic() - began < 2
    hung = api.wait_for(lambda r: r.behaviour == "Hang", timeout=1)
    assert hung.response_status is None
    assert hung.execution_uuid == execution_uuid
    assert api.execution(execution_uuid)["last_heartbeat_at"] is not None

    # The hung request holds only its own thread: the next one is answered meanwhile.
    assert patch(api, execution_uuid, {"status": "RUNNING"}).status_code == 204
    api.release_hangs()


def test_reset_raises_connection_error(api: FakeCloudReactor) -> None:
    api.script("POST", TASK_EXECUTIONS_PATH, Reset())

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        post(api, start_body())

    assert "reset" in str(caught.value).lower()
    assert api.requests[0].behaviour == "Reset"
    assert api.executions == {}
    assert post(api, start_body()).status_code == 201


def test_slow_sends_headers_then_trickles_the_body(api: FakeCloudReactor) -> None:
    api.script("POST", re.compile(r"/api/v1/task_executions/?"), Slow(0.5))

    began = time.monotonic()
    response = post(api, start_body(), timeout=(2, 0.4), stream=True)
    headers_after = time.monotonic() - began
    body = response.json()  # reads the trickled body
    total = time.monotonic() - began
    response.close()

    assert response.status_code == 201
    assert headers_after < 0.3
    assert total >= 0.45
    assert body["uuid"] in api.executions  # state is changed as for a normal answer


def test_slow_empty_answer_is_held_back(api: FakeCloudReactor) -> None:
    execution_uuid = start(api)
    api.script("PATCH", TASK_EXECUTION_PATH, Slow(0.3))

    began = time.monotonic()
    assert patch(api, execution_uuid, {"status": "RUNNING"}).status_code == 204
    assert time.monotonic() - began >= 0.25


def test_malformed_json_body(api: FakeCloudReactor) -> None:
    api.script("POST", TASK_EXECUTIONS_PATH, Malformed(), Malformed(process=True))

    first = post(api, start_body())
    assert first.status_code == 201
    assert first.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        first.json()
    assert api.executions == {}

    assert post(api, start_body()).status_code == 201
    assert len(api.executions) == 1


def test_always_applies_until_cleared(api: FakeCloudReactor) -> None:
    execution_uuid = start(api)
    api.always("PATCH", Respond(503))
    api.script("PATCH", TASK_EXECUTION_PATH, Respond(502))  # a queue wins over always

    codes = [patch(api, execution_uuid, {"status": "RUNNING"}).status_code for _ in range(3)]
    api.clear_always()
    codes.append(patch(api, execution_uuid, {"status": "RUNNING"}).status_code)

    assert codes == [502, 503, 503, 204]
    assert post(api, start_body()).status_code == 201  # the rule was for PATCH only


# ------------------------------------------------------------------------- helpers, lifecycle


def test_wait_for_blocks_until_a_matching_request_is_recorded(api: FakeCloudReactor) -> None:
    execution_uuid = start(api)
    sender = threading.Thread(target=lambda: [
        patch(api, execution_uuid, {"status": status}) for status in ("RUNNING", "SUCCEEDED")])
    sender.start()
    try:
        final = api.wait_for(lambda r: r.get("status") == "SUCCEEDED", timeout=5)
    finally:
        sender.join()

    assert final.response_status == 204
    assert api.execution(execution_uuid)["status"] == "SUCCEEDED"  # no race with the handler
    assert api.wait_for(lambda r: r.method == "PATCH", count=2).get("status") == "SUCCEEDED"
    with pytest.raises(TimeoutError):
        api.wait_for(lambda r: r.get("status") == "FAILED", timeout=0.1)


def test_close_releases_hung_and_idle_connections_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    fake = FakeCloudReactor().start()
    request = (
        f"POST {TASK_EXECUTIONS_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n{}").encode()
    with socket.create_connection(("127.0.0.1", fake.port)) as hung, \
            socket.create_connection(("127.0.0.1", fake.port)) as idle:
        fake.always(None, Hang())
        hung.sendall(request)
        fake.wait_for(lambda r: r.behaviour == "Hang", timeout=2)
        idle.sendall(b"PATCH /api/v1/task_executions/x/ HTTP/1.1\r\n")  # never finished

        began = time.monotonic()
        fake.close()
        assert time.monotonic() - began < 2
        hung.settimeout(2)
        assert hung.recv(100) == b""  # closed without an answer
    fake.close()  # idempotent

    assert set(threading.enumerate()) <= before


def test_keep_alive_connections_are_reused_and_closed_on_shutdown() -> None:
    fake = FakeCloudReactor(api_keys=KEYS).start()
    with requests.Session() as session:
        try:
            responses = [session.post(fake.url(TASK_EXECUTIONS_PATH), json=start_body(),
                                      headers=headers(), timeout=5) for _ in range(3)]
            assert [r.status_code for r in responses] == [201, 201, 201]
            assert "close" not in responses[0].headers.get("Connection", "")
            began = time.monotonic()
        finally:
            fake.close()  # the session still holds an idle connection
        assert time.monotonic() - began < 1


def test_without_keep_alive_every_answer_closes_the_connection() -> None:
    with FakeCloudReactor(api_keys=KEYS, keep_alive=False) as fake:
        response = post(fake, start_body())
        assert response.status_code == 201
        assert response.headers["Connection"] == "close"
