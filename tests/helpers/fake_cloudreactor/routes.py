"""The server's answers: authentication, the two endpoints the wrapper uses, and the rules
they apply to the stored state — task resolution and auto-creation, the concurrency check
on creation, the status-transition rules of an update and the manual-stop handshake.

Every function runs under the fake's lock and returns the reply with the execution the
request was about, so the request is recorded together with its consequences.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from .checks import Problems, auto_creates
from .limits import field_errors
from .listing import list_executions
from .protocol import (
    COLLECTION_RE,
    DETAIL_RE,
    DEVELOPER_LEVEL,
    EXECUTION_FIELDS,
    FINAL_CHECKED,
    TASK_LEVEL,
)
from .records import ApiKey, Incoming
from .replies import Reply, detail_body, validation_body
from .state import ServerState
from .values import is_int, now_iso

_NOT_PROVIDED = ("Authentication credentials were not provided.", "not_authenticated",
                 "NotAuthenticated")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}


def answer(state: ServerState, keys: Mapping[str, ApiKey], incoming: Incoming,
           problems: Problems, reject_violations: bool) -> tuple[Reply, str | None]:
    """The real server's answer (and its state change); returns the execution uuid the
    request was about, if any. A request with protocol problems is answered 400 once it is
    authenticated and its endpoint exists, as the server's validation would."""
    collection = COLLECTION_RE.fullmatch(incoming.path)
    detail = DETAIL_RE.fullmatch(incoming.path)
    if not (collection or detail):
        return Reply.of(404, {"detail": "Not found."}), None
    key, failure = _authenticate(keys, incoming)
    if failure is not None or key is None:
        return failure or _insufficient(), None
    if collection and incoming.method == "GET" and key.level_value >= TASK_LEVEL:
        if problems and reject_violations:
            return Reply.of(400, problems.body()), None
        return list_executions(state, incoming, key), None
    if (collection and incoming.method != "POST") or (detail and incoming.method != "PATCH"):
        detail_text = f'Method "{incoming.method}" not allowed.'
        return Reply.of(405, detail_body(
            detail_text, "method_not_allowed", "MethodNotAllowed")), None
    if key.level_value < TASK_LEVEL:
        return _insufficient(), None
    if detail:
        execution_uuid = unquote(detail.group(1))
        if execution_uuid not in state.executions:
            return Reply.of(404, {"detail": "No TaskExecution matches the given query."}), None
        if problems and reject_violations:
            return Reply.of(400, problems.body()), execution_uuid
        refused = _refused_fields(incoming)
        if refused is not None:
            return refused, execution_uuid
        return _update(state, incoming, key, execution_uuid), execution_uuid
    if problems and reject_violations:
        return Reply.of(400, problems.body()), None
    refused = _refused_fields(incoming)
    if refused is not None:
        return refused, None
    return _create(state, incoming, key)


def _refused_fields(incoming: Incoming) -> Reply | None:
    """The 400 of the server's field validators, if a field cannot be stored."""
    body = incoming.json if isinstance(incoming.json, dict) else {}
    errors = field_errors(body)
    return Reply.of(400, validation_body(errors)) if errors else None


def _authenticate(keys: Mapping[str, ApiKey], incoming: Incoming) -> tuple[
        ApiKey | None, Reply | None]:
    """DRF token authentication as the server configures it: a Bearer or Token scheme, a
    known and enabled key."""
    authorization = incoming.header("Authorization")
    if not authorization:
        return None, Reply.of(401, detail_body(*_NOT_PROVIDED), _CHALLENGE)
    scheme, _, key = authorization.partition(" ")
    if scheme not in ("Bearer", "Token"):
        return None, Reply.of(401, detail_body(*_NOT_PROVIDED), _CHALLENGE)
    key = key.strip()
    if not key or " " in key:
        return None, Reply.of(401, detail_body(
            "Invalid token header. No credentials provided.", "authentication_failed",
            "AuthenticationFailed"), _CHALLENGE)
    info = keys.get(key)
    if info is None:
        return None, Reply.of(401, detail_body(
            "Invalid token.", "authentication_failed", "AuthenticationFailed"), _CHALLENGE)
    if not info.enabled:
        return None, Reply.of(403, detail_body(
            "Token is deactivated", "permission_denied", "PermissionDenied"))
    return info, None


def _insufficient() -> Reply:
    return Reply.of(403, detail_body(
        "Insufficient Group access level", "permission_denied", "PermissionDenied"))


def _task_does_not_exist() -> Reply:
    return Reply.of(422, validation_body({"task": ["Task does not exist"]},
                                         "UnprocessableEntity"))


def _create(state: ServerState, incoming: Incoming, key: ApiKey) -> tuple[Reply, str | None]:
    """POST /task_executions/: resolve or auto-create the task, check concurrency, create."""
    body: dict[str, Any] = incoming.json if isinstance(incoming.json, dict) else {}
    task_object = body.get("task")
    if task_object is None:
        task_object = body.get("auto_created_task_properties")
    if not isinstance(task_object, dict):
        return Reply.of(400, validation_body({"task": ["This field is required."]})), None
    auto = auto_creates(body)
    task, failure = _find_task(state, task_object, key)
    if failure is not None:
        return failure, None
    if task is None and not auto:
        return _task_does_not_exist(), None
    if auto:
        task, failure = _auto_create(state, task, task_object, body, key)
        if failure is not None:
            return failure, None
    assert task is not None
    limit = task.get("max_concurrency")
    if is_int(limit) and limit > 0 and state.running_count(task) >= limit:
        # An empty body and no Retry-After, as the real server answers a concurrency
        # conflict: the wrapper waits its own conflict retry delay before trying again.
        return Reply(409), None

    fields = {k: v for k, v in body.items() if k not in ("task",)}
    execution = state.new_execution(task, fields, user=key.user)
    if auto:
        execution["auto_created_task_properties"] = {
            k: copy.deepcopy(v) for k, v in task_object.items() if k != "run_environment"}
    return Reply.of(201, execution), execution["uuid"]


def _find_task(state: ServerState, task_object: Mapping[str, Any], key: ApiKey) -> tuple[
        dict[str, Any] | None, Reply | None]:
    """The task a start request names: by uuid (which must exist, be visible to the key and
    match the name, if one is given), else by name (None when there is none yet)."""
    if not task_object.get("uuid"):
        return state.find_task_by_name(str(task_object.get("name")), key), None
    task = state.tasks.get(str(task_object["uuid"]))
    if task is not None and not state.visible(task, key):
        task = None
    if task is None:
        return None, _task_does_not_exist()
    name = task_object.get("name")
    if name and name != task["name"]:
        return None, Reply.of(422, detail_body(
            f"Task {task['uuid']} is named {task['name']!r}, not {name!r}",
            "unprocessable_entity", "UnprocessableEntity"))
    return task, None


def _auto_create(state: ServerState, task: dict[str, Any] | None,
                 task_object: Mapping[str, Any], body: Mapping[str, Any],
                 key: ApiKey) -> tuple[dict[str, Any] | None, Reply | None]:
    """Create the task a start request describes, or update the existing one unless a newer
    task version already ran; both need a Developer key."""
    if key.level_value < DEVELOPER_LEVEL:
        return None, _insufficient()
    run_env, failure = state.resolve_run_environment(task_object, key, new=task is None)
    if failure is not None:
        return None, failure
    if task is None:
        task = state.new_task(task_object)
        task["run_environment"] = run_env
    elif state.task_update_allowed(task, body):
        state.apply_task_object(task, task_object)
        if run_env is not None:
            task["run_environment"] = run_env
    return task, None


def _update(state: ServerState, incoming: Incoming, key: ApiKey, execution_uuid: str) -> Reply:
    """PATCH /task_executions/<uuid>/: the status-transition rules (a final status cannot be
    replaced by another), and the manual-stop handshake (the next RUNNING report of a
    STOPPING execution makes it STOPPED and is answered 409 with the execution)."""
    body: dict[str, Any] = incoming.json if isinstance(incoming.json, dict) else {}
    execution = state.executions[execution_uuid]
    stored = execution["status"]
    requested = str(body.get("status") or "RUNNING").upper()
    now = now_iso()
    updates = {k: v for k, v in body.items() if k in EXECUTION_FIELDS}
    updates["status"] = requested

    if requested == "RUNNING":
        if stored not in ("RUNNING", "MANUALLY_STARTED", "STOPPING"):
            return Reply.of(409, validation_body(
                {"status": f"Status cannot be set to RUNNING after {stored}"}))
        if stored == "STOPPING":
            updates["status"] = "STOPPED"
            if updates.get("finished_at") is None:
                updates["finished_at"] = now
            updates["kill_finished_at"] = now
        elif updates.get("last_heartbeat_at") is None:
            updates["last_heartbeat_at"] = now
    elif requested in FINAL_CHECKED:
        if stored not in (requested, "RUNNING", "MANUALLY_STARTED", "STOPPING"):
            return Reply.of(409, validation_body(
                {"status": f"Status cannot be set to {requested} after {stored}"}))
        if stored == "STOPPING" and requested in ("FAILED", "ABORTED"):
            updates["status"] = "STOPPED"
        if updates.get("finished_at") is None and execution["finished_at"] is None:
            updates["finished_at"] = now
    elif requested == "STOPPING":
        updates.setdefault("killed_by", key.user)
        updates.setdefault("kill_started_at", now)

    state.apply_execution_fields(execution, updates)
    execution["updated_at"] = now
    if requested == "RUNNING" and execution["status"] != "RUNNING":
        return Reply.of(409, execution)  # the stop handshake: 409 with the full body
    if incoming.query.get("content") == ["false"]:
        return Reply(204)
    return Reply.of(200, execution)
