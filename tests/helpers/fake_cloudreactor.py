"""A fake CloudReactor API server, served over real HTTP on 127.0.0.1, for pwsup's tests.

Why a fake and not mocks: pwsup's reporter talks HTTP through `requests` with timeouts,
retries and keep-alive. Only a real socket exercises all of that — connection resets, hung
reads, slow bodies and `Retry-After` — so the fake is a `ThreadingHTTPServer` on an ephemeral
port, run in a daemon thread of the test process.

It plays three roles:

1. **The server.** Tasks and Task Executions live in memory and follow the rules of the real
   server (`CloudReactor/task_manager`, as written down in
   /work/shared/reference/server-protocol.md): creation with task lookup or auto-creation,
   the concurrency check (409 with an empty body), the status-transition rules of PATCH
   (409 with the execution JSON after a manual stop), authentication with access levels,
   and the server's error-body shapes.
2. **The protocol checker.** Every request is checked against what the wrapper must send
   (upstream spec §3): headers, a JSON object body, the type of every known field.
   Problems go to `api.violations` and the request is answered 400, so a test only needs
   `assert api.violations == []` to know pwsup spoke the protocol.
3. **The fault injector.** Behaviours scripted per (method, path pattern) replace the
   normal answer: a given status, a hang until released, a TCP reset, a slow body,
   malformed JSON.

Every request is recorded (`api.requests`) once the fake has decided how to answer it and
has applied any change of state, so a test that waits for a request (`api.wait_for`) can
inspect `api.executions` right away without racing the handler thread.

Usage::

    with FakeCloudReactor() as api:
        env["PROC_WRAPPER_API_BASE_URL"] = api.base_url
        env["PROC_WRAPPER_API_KEY"] = api.api_key
        api.script("PATCH", TASK_EXECUTION_PATH, Respond(503), Reset())
        ...run pwsup...
        assert api.violations == []
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import struct
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from http import HTTPStatus
from typing import Any, Final, TypeGuard
from urllib.parse import parse_qs, unquote, urlsplit

from .served import ServedFake, TrackedHandler

__all__ = [
    "ACCESS_LEVELS",
    "DEFAULT",
    "DEFAULT_API_KEY",
    "STATUSES",
    "STOP_REASONS",
    "TASK_EXECUTIONS_PATH",
    "TASK_EXECUTION_PATH",
    "ApiKey",
    "Behaviour",
    "FakeCloudReactor",
    "Hang",
    "Malformed",
    "Passthrough",
    "RecordedRequest",
    "Reset",
    "Respond",
    "Slow",
    "default_body",
]

# --------------------------------------------------------------------------------------
# Protocol constants (server-protocol.md §2, §4)
# --------------------------------------------------------------------------------------

TASK_EXECUTIONS_PATH: Final = "/api/v1/task_executions/"
"""The collection path: POST here creates an execution."""
TASK_EXECUTION_PATH: Final = "/api/v1/task_executions/*"
"""A glob matching any single execution's path (PATCH), for `script()`/`always()`."""

DEFAULT_API_KEY: Final = "fake-developer-key-0123456789abcdef01234"
"""The key configured when `api_keys` is not given (Developer level): 40 characters like
the server's keys."""

ACCESS_LEVELS: Final[Mapping[str, int]] = {
    "observer": 1, "task": 50, "support": 100, "developer": 500, "admin": 1000}
"""Group access levels of the server's API keys (§2)."""
_TASK_LEVEL: Final = ACCESS_LEVELS["task"]
_DEVELOPER_LEVEL: Final = ACCESS_LEVELS["developer"]

STATUSES: Final = (
    "RUNNING", "SUCCEEDED", "FAILED", "TERMINATED_AFTER_TIME_OUT", "MARKED_DONE",
    "EXITED_AFTER_MARKED_DONE", "STOPPING", "STOPPED", "ABANDONED", "MANUALLY_STARTED",
    "ABORTED")
"""The server's execution status names (§4), exchanged as strings."""
STOP_REASONS: Final = (
    "MANUAL", "MAX_EXECUTION_TIME_EXCEEDED", "MISSING_HEARTBEAT", "FAILED_TO_START",
    "WORKFLOW_EXECUTION_STOPPED", "WORKFLOW_EXECUTION_RETRIED",
    "WORKFLOW_EXECUTION_TIMED_OUT")
_FINAL_CHECKED: Final = frozenset({"SUCCEEDED", "FAILED", "TERMINATED_AFTER_TIME_OUT", "ABORTED"})
"""Final statuses whose transition the server checks (§5)."""

_EXECUTION_FIELDS: Final = (
    "url", "uuid", "dashboard_url", "task", "auto_created_task_properties",
    "task_version_number", "task_version_text", "task_version_signature", "commit_url",
    "other_instance_metadata", "hostname", "environment_variables_overrides",
    "execution_method_type", "execution_method_details", "status", "started_by", "started_at",
    "finished_at", "marked_done_by", "marked_done_at", "marked_outdated_at", "killed_by",
    "kill_started_at", "kill_finished_at", "kill_error_code", "stop_reason", "last_heartbeat_at",
    "last_app_heartbeat_at", "failed_attempts", "timed_out_attempts", "exit_code",
    "error_details", "last_status_message", "error_count", "skipped_count", "expected_count",
    "success_count", "other_runtime_metadata", "current_cpu_units", "mean_cpu_units",
    "max_cpu_units", "current_memory_mb", "mean_memory_mb", "max_memory_mb", "wrapper_version",
    "wrapper_log_level", "deployment", "is_service", "task_max_concurrency",
    "max_conflicting_age_seconds", "schedule", "heartbeat_interval_seconds",
    "workflow_task_instance_execution", "api_base_url", "debug_log_tail", "error_log_tail",
    "embedded_mode", "input_value", "output_value", "created_at", "updated_at", "build", "deploy",
    # the "configuration" fields
    "infrastructure_type", "infrastructure_settings", "process_command", "allocated_cpu_units",
    "allocated_memory_mb", "prevent_offline_execution", "process_timeout_seconds",
    "process_max_retries", "process_retry_delay_seconds",
    "process_termination_grace_period_seconds", "api_retry_delay_seconds",
    "api_resume_delay_seconds", "api_error_timeout_seconds",
    "api_task_execution_creation_error_timeout_seconds",
    "api_task_execution_creation_conflict_timeout_seconds",
    "api_task_execution_creation_conflict_retry_delay_seconds",
    "api_final_update_timeout_seconds", "api_request_timeout_seconds",
    "status_update_interval_seconds", "status_update_port", "status_update_message_max_bytes",
    "num_log_lines_sent_on_failure", "num_log_lines_sent_on_timeout",
    "num_log_lines_sent_on_success", "max_log_line_length", "merge_stdout_and_stderr_logs",
    "ignore_stdout", "ignore_stderr", "managed_probability", "failure_report_probability",
    "timeout_report_probability", "other_metadata")
"""Every field of the server's execution serializer (§3.2), in its order."""
_SERVER_OWNED: Final = frozenset({
    "url", "uuid", "dashboard_url", "task", "auto_created_task_properties", "started_by",
    "api_base_url", "created_at", "updated_at"})
"""Fields the server fills itself; values a client sends for them are ignored."""
_WRITE_ONCE: Final = frozenset({
    "started_at", "started_by", "finished_at", "kill_started_at", "kill_finished_at",
    "kill_error_code", "killed_by", "marked_done_by", "marked_done_at", "marked_outdated_at"})
"""Fields that keep their first non-null value (§5)."""
_DEEP_MERGED: Final = frozenset({
    "other_runtime_metadata", "execution_method_details", "infrastructure_settings"})
_TRIMMED: Final = frozenset({"debug_log_tail", "error_log_tail", "last_status_message"})
"""Text fields DRF stores with surrounding whitespace trimmed (observed: the trailing newline
of `debug_log_tail` is lost)."""
_DATETIME_FIELDS: Final = frozenset({
    "started_at", "finished_at", "last_heartbeat_at", "last_app_heartbeat_at",
    "marked_done_at", "marked_outdated_at", "kill_started_at", "kill_finished_at"})

# Field kinds for the protocol checker: what the wrapper may send (upstream spec §3.3, §3.4).
_INT, _BOOL, _NUMBER, _STR, _DICT, _STR_LIST, _DATETIME, _ANY = (
    "int", "bool", "number", "str", "dict", "str_list", "datetime", "any")
_BODY_FIELD_KINDS: Final[Mapping[str, str]] = {
    **dict.fromkeys((
        "task_version_number", "process_timeout_seconds", "process_max_retries",
        "process_retry_delay_seconds", "task_max_concurrency", "max_conflicting_age_seconds",
        "process_termination_grace_period_seconds", "api_error_timeout_seconds",
        "api_retry_delay_seconds", "api_resume_delay_seconds",
        "api_task_execution_creation_error_timeout_seconds",
        "api_task_execution_creation_conflict_timeout_seconds",
        "api_task_execution_creation_conflict_retry_delay_seconds",
        "api_final_update_timeout_seconds", "api_request_timeout_seconds",
        "status_update_interval_seconds", "status_update_port",
        "status_update_message_max_bytes", "num_log_lines_sent_on_failure",
        "num_log_lines_sent_on_timeout", "num_log_lines_sent_on_success", "max_log_line_length",
        "heartbeat_interval_seconds", "success_count", "error_count", "skipped_count",
        "expected_count", "failed_attempts", "timed_out_attempts", "exit_code", "pid"), _INT),
    **dict.fromkeys((
        "embedded_mode", "prevent_offline_execution", "merge_stdout_and_stderr_logs",
        "ignore_stdout", "ignore_stderr", "is_service"), _BOOL),
    **dict.fromkeys((
        "api_managed_probability", "api_failure_report_probability",
        "api_timeout_report_probability", "allocated_cpu_units", "allocated_memory_mb"),
        _NUMBER),
    **dict.fromkeys((
        "task_version_text", "task_version_signature", "wrapper_log_level", "wrapper_family",
        "wrapper_version", "schedule", "process_command", "hostname", "execution_method_type",
        "infrastructure_type", "last_status_message", "debug_log_tail", "error_log_tail"), _STR),
    **dict.fromkeys((
        "other_instance_metadata", "execution_method_details", "infrastructure_settings",
        "other_runtime_metadata"), _DICT),
    **dict.fromkeys(("started_at", "finished_at", "last_heartbeat_at",
                     "last_app_heartbeat_at"), _DATETIME),
    "ip_v4_addresses": _STR_LIST,
    "input_value": _ANY,
    "output_value": _ANY,
}
_TASK_FIELD_KINDS: Final[Mapping[str, str]] = {
    **dict.fromkeys(("name", "schedule", "execution_method_type", "infrastructure_type"), _STR),
    **dict.fromkeys(("was_auto_created", "passive", "is_service"), _BOOL),
    **dict.fromkeys(("max_concurrency", "heartbeat_interval_seconds"), _INT),
    **dict.fromkeys((
        "api_managed_probability", "api_failure_report_probability",
        "api_timeout_report_probability", "allocated_cpu_units", "allocated_memory_mb"),
        _NUMBER),
    **dict.fromkeys(("execution_method_capability_details", "infrastructure_settings"), _DICT),
    "ip_v4_addresses": _STR_LIST,
}
_TASK_IGNORED: Final = frozenset({
    "api_managed_probability", "api_failure_report_probability",
    "api_timeout_report_probability", "run_environment", "uuid", "url"})
"""Task-object keys not stored on the Task as sent: the probabilities' names differ from the
server's fields (§3.3), and the run environment and identity are resolved separately."""
_TASK_DEFAULTS: Final[Mapping[str, Any]] = {
    "max_heartbeat_lateness_before_alert_seconds": 120,
    "max_heartbeat_lateness_before_abandonment_seconds": 600,
    "notification_event_severity_on_missing_heartbeat": 400,
    "max_age_seconds": None, "enabled": True, "capabilities": [],
    "managed_probability": None, "failure_report_probability": None,
    "timeout_report_probability": None,
}

_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_COLLECTION_RE: Final = re.compile(r"/api/v1/task_executions/?")
_DETAIL_RE: Final = re.compile(r"/api/v1/task_executions/([^/]+)/?")


# --------------------------------------------------------------------------------------
# Behaviours (scripted faults)
# --------------------------------------------------------------------------------------


class _Default:
    """Sentinel type: "use the real server's body for this status"."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default()


class Behaviour:
    """Base of the scripted behaviours: what the fake does instead of answering normally."""


@dataclass(frozen=True)
class Passthrough(Behaviour):
    """Answer normally. Useful inside a script: `script(..., Passthrough(), Respond(503))`
    lets the first matching request through and fails the second."""


@dataclass(frozen=True)
class Respond(Behaviour):
    """Answer with `status` and no change of state.

    `body`: a dict/list (sent as JSON), str/bytes (sent as is), None (empty), or DEFAULT —
    the body the real server sends for that status (see `default_body`): the error shape
    for 4xx/5xx, empty for a 409 on creation, a proxy's HTML page for 502/503/504.
    `headers` are added as given (e.g. {"Retry-After": "1"}); the fake adds none itself.
    """

    status: int
    body: Any = DEFAULT
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang(Behaviour):
    """Read the whole request, then answer nothing until `api.release_hangs()` or shutdown;
    then close the connection without a response. Nothing changes on the server, as with a
    proxy that lost the request. Meant for the client's read timeout."""


@dataclass(frozen=True)
class Reset(Behaviour):
    """Read the request and close the socket with SO_LINGER 0: the client gets a TCP RST
    and no response (`requests` raises ConnectionError). Nothing changes on the server."""


@dataclass(frozen=True)
class Slow(Behaviour):
    """Send the status line and headers at once, then trickle the body over `seconds`.

    The answer is the normal one (state changes applied when the request arrives) unless
    `response` is given. An answer with an empty body (a 204) cannot be trickled, so the
    whole response is held back for `seconds` instead. Shutdown cuts the trickle short.
    """

    seconds: float
    response: Respond | None = None


@dataclass(frozen=True)
class Malformed(Behaviour):
    """Answer `status` (default: 201 to a POST, 200 otherwise) with Content-Type
    application/json and a body that is not valid JSON.

    By default nothing changes on the server. With `process=True` the request is processed
    normally first (e.g. the execution is created but the client cannot read its uuid).
    """

    status: int | None = None
    body: bytes = b'{"uuid": "'
    process: bool = False


# --------------------------------------------------------------------------------------
# API keys and recorded requests
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """A configured API key: access level (name from ACCESS_LEVELS or a number), whether it
    is enabled, the user it acts for, and an optional run-environment scope (tasks of other
    run environments are invisible to a scoped key, as on the server)."""

    level: int | str = "developer"
    enabled: bool = True
    user: str = "exampleuser"
    run_environment: str | None = None

    @property
    def level_value(self) -> int:
        if isinstance(self.level, int):
            return self.level
        return ACCESS_LEVELS[self.level.lower()]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, and how it was answered.

    `timestamp` is time.monotonic() when the request line arrived. `json` is the parsed body
    (None when there was no body or it did not parse). `response_status` is None for hangs and
    resets. `behaviour` names the scripted behaviour used (None: answered normally).
    `execution_uuid` is the execution the request was about: the PATCHed one, or the one a
    POST created.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    timestamp: float
    response_status: int | None
    behaviour: str | None
    execution_uuid: str | None
    violations: tuple[str, ...]

    def header(self, name: str) -> str | None:
        """A request header, by case-insensitive name."""
        lower = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lower), None)

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level key of the JSON body (`default` when the body is not an object)."""
        return self.json.get(key, default) if isinstance(self.json, dict) else default


# --------------------------------------------------------------------------------------
# Error bodies (server-protocol.md §10)
# --------------------------------------------------------------------------------------


def _error_detail_repr(errors: Mapping[str, Any]) -> str:
    """Imitate the Python repr of DRF's error dict that the server puts in error_message."""
    def one(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(one(v) for v in value) + "]"
        return f"ErrorDetail(string={str(value)!r}, code='invalid')"
    return "{" + ", ".join(f"{k!r}: {one(v)}" for k, v in errors.items()) + "}"


def _validation_body(errors: Mapping[str, Any], error_class: str = "ValidationError") -> dict[
        str, Any]:
    return {**errors, "error_class": error_class, "error_message": _error_detail_repr(errors)}


def _detail_body(detail: str, code: str, error_class: str) -> dict[str, Any]:
    return {"detail": detail, "error_code": code, "error_class": error_class,
            "error_message": detail}


_PROXY_PAGES: Final[Mapping[int, str]] = {
    502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out"}


def default_body(status: int, method: str = "POST") -> Any:
    """The body the real server (or the proxy in front of it) sends with `status`.

    Returns a JSON-able value, a str (HTML page of a proxy for 502/503/504) or None (empty).
    """
    bodies: dict[int, Any] = {
        400: _validation_body({"non_field_errors": ["Invalid data."]}),
        401: _detail_body("Invalid token.", "authentication_failed", "AuthenticationFailed"),
        403: _detail_body("Insufficient Group access level", "permission_denied",
                          "PermissionDenied"),
        404: {"detail": "No TaskExecution matches the given query."},
        409: None if method == "POST" else _validation_body(
            {"status": "Status cannot be set to RUNNING after STOPPED"}),
        422: _validation_body({"task": ["Task does not exist"]}, "UnprocessableEntity"),
        429: _detail_body("Request was throttled.", "throttled", "Throttled"),
        500: {"error_class": "KeyError", "error_message": "'BOGUS'"},
    }
    if status in bodies:
        return bodies[status]
    if status in _PROXY_PAGES:
        title = _PROXY_PAGES[status]
        return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
    if status == 204:
        return None
    if 200 <= status < 300:
        return {}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return _detail_body(phrase, "error", "APIException")


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _now_iso() -> str:
    return _render_datetime(datetime.now(timezone.utc))


def _render_datetime(value: datetime) -> str:
    """Render like DRF: ISO-8601 in UTC, `Z` instead of `+00:00`."""
    text = value.astimezone(timezone.utc).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _parse_datetime(value: str) -> datetime | None:
    """Parse an ISO-8601 date-time that has a 'T' and a time zone; None otherwise."""
    if "T" not in value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _deep_merge(into: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(into)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _is_int(value: object) -> TypeGuard[int]:
    """An int that is not a bool (JSON true must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _kind_problem(value: Any, kind: str) -> str | None:
    """Why `value` is not of `kind` (None: it is). Null is accepted except for bools."""
    if value is None:
        return "must not be null" if kind == _BOOL else None
    ok = {
        _INT: _is_int(value),
        _BOOL: isinstance(value, bool),
        _NUMBER: isinstance(value, (int, float)) and not isinstance(value, bool),
        _STR: isinstance(value, str),
        _DICT: isinstance(value, dict),
        _STR_LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        _DATETIME: isinstance(value, str) and _parse_datetime(value) is not None,
        _ANY: True,
    }[kind]
    if ok:
        return None
    wanted = {
        _INT: "an integer", _BOOL: "a boolean", _NUMBER: "a number", _STR: "a string",
        _DICT: "an object", _STR_LIST: "a list of strings",
        _DATETIME: "an ISO-8601 date-time with a time zone", _ANY: "anything"}[kind]
    return f"must be {wanted}, got {json.dumps(value)[:80]}"


@dataclass
class _Reply:
    """A complete HTTP answer, decided under the lock and written afterwards."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: int, body: Any, headers: Mapping[str, str] | None = None) -> _Reply:
        """Encode `body` like `Respond.body`: JSON for dict/list, raw for str/bytes."""
        out = dict(headers or {})
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
            if body.lstrip().startswith("<"):
                out.setdefault("Content-Type", "text/html")
        else:
            data = json.dumps(body).encode()
        if data:
            out.setdefault("Content-Type", "application/json")
        return cls(status, data, out)


@dataclass(frozen=True)
class _Incoming:
    """A request as read from the socket, before any decision."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    parse_problems: tuple[str, ...]
    timestamp: float

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lower), None)


@dataclass(frozen=True)
class _Decision:
    """What the handler thread does once the lock is released."""

    reply: _Reply | None = None
    hang: threading.Event | None = None
    reset: bool = False
    slow_seconds: float | None = None


class _Problems:
    """Violations found in one request: a message for `api.violations` and, for the 400
    body, the field it is about (None: a non-field error)."""

    def __init__(self) -> None:
        self.items: list[tuple[str | None, str]] = []

    def add(self, where: str | None, message: str) -> None:
        self.items.append((where, message))

    def body(self) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        for where, message in self.items:
            errors.setdefault(where or "non_field_errors", []).append(message)
        return _validation_body(errors)

    def __bool__(self) -> bool:
        return bool(self.items)


class _Rule:
    """A (method, path pattern) and the behaviours scripted for it."""

    def __init__(self, method: str | None, path: str | re.Pattern[str] | None,
                 behaviours: Iterable[Behaviour]) -> None:
        self.method = None if method is None or method == "*" else method.upper()
        self.path = path
        self.behaviours = list(behaviours)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        if isinstance(self.path, re.Pattern):
            return self.path.fullmatch(path) is not None
        return fnmatchcase(path.rstrip("/"), self.path.rstrip("/"))


# --------------------------------------------------------------------------------------
# The fake server
# --------------------------------------------------------------------------------------


class FakeCloudReactor(ServedFake):
    """An in-memory CloudReactor API server on 127.0.0.1 (see the module docstring).

    `api_keys` maps key → ApiKey, or → an access-level name/number (enabled, user
    "exampleuser"); default: {DEFAULT_API_KEY: developer}. `run_environments`: None accepts
    any run environment (created on first use, convenient for tests); a collection makes only
    those names exist, so unknown names get 422 and a new task without one gets 400, as on the
    real server. `reject_violations=False` records violations but answers such requests as if
    they were valid. `keep_alive=False` closes the connection after every response.
    """

    name = "fake-cloudreactor"

    def __init__(self, api_keys: Mapping[str, ApiKey | str | int] | None = None, *,
                 run_environments: Collection[str] | None = None,
                 reject_violations: bool = True, keep_alive: bool = True) -> None:
        keys = {DEFAULT_API_KEY: "developer"} if api_keys is None else api_keys
        self._keys: dict[str, ApiKey] = {
            k: v if isinstance(v, ApiKey) else ApiKey(level=v) for k, v in keys.items()}
        for key in self._keys.values():
            _ = key.level_value  # fail early on an unknown level name
        self._known_run_environments = (
            None if run_environments is None else frozenset(run_environments))
        self.reject_violations = reject_violations
        self.keep_alive = keep_alive

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._tasks: dict[str, dict[str, Any]] = {}
        self._executions: dict[str, dict[str, Any]] = {}
        self._run_envs: dict[str, dict[str, Any]] = {}
        for name in run_environments or ():
            self._add_run_environment(name)
        self._scripts: list[_Rule] = []
        self._always: list[_Rule] = []
        self._init_serving()

    # ---- lifecycle: start(), close(), `with` (ServedFake) ------------------------------

    @property
    def base_url(self) -> str:
        """"http://127.0.0.1:PORT", without a trailing slash (PROC_WRAPPER_API_BASE_URL)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + path

    @property
    def api_key(self) -> str:
        """The first configured key that is enabled and at least Developer level (else the
        first key): the one to give pwsup in ordinary tests."""
        for key, info in self._keys.items():
            if info.enabled and info.level_value >= _DEVELOPER_LEVEL:
                return key
        return next(iter(self._keys))

    # ---- scripting ------------------------------------------------------------------

    def script(self, method: str | None, path: str | re.Pattern[str] | None,
               *behaviours: Behaviour) -> None:
        """Queue behaviours for requests matching (method, path), used one per request in
        order; afterwards such requests are answered normally again.

        `method` None or "*" matches any method. `path`: None matches any path; a str is a
        glob (`*` spans slashes) compared with the trailing slash ignored, e.g.
        TASK_EXECUTIONS_PATH or TASK_EXECUTION_PATH; a compiled regex must fullmatch the
        path (without the query). Queues take precedence over `always()`; the oldest
        matching queue with behaviours left is used first.
        """
        if not behaviours:
            raise ValueError("script() needs at least one behaviour")
        with self._lock:
            self._scripts.append(_Rule(method, path, behaviours))

    def always(self, method: str | None, behaviour: Behaviour, *,
               path: str | re.Pattern[str] | None = None) -> None:
        """Use `behaviour` for every matching request (when no script queue applies) until
        `clear_always()`. The most recently added matching rule wins."""
        with self._lock:
            self._always.insert(0, _Rule(method, path, [behaviour]))

    def clear_scripts(self) -> None:
        """Drop every queued behaviour that was not used yet."""
        with self._lock:
            self._scripts.clear()

    def clear_always(self) -> None:
        """Drop every `always()` rule."""
        with self._lock:
            self._always.clear()

    @property
    def pending_scripts(self) -> int:
        """How many queued behaviours are still unused (a test can assert 0)."""
        with self._lock:
            return sum(len(rule.behaviours) for rule in self._scripts)

    # ---- recorded traffic -----------------------------------------------------------

    @property
    def violations(self) -> list[str]:
        """A snapshot of every protocol violation found so far ("METHOD path: message")."""
        with self._lock:
            return list(self._violations)

    def requests_for(self, execution_uuid: str) -> list[RecordedRequest]:
        """The requests about one execution: the POST that created it and its PATCHes."""
        with self._lock:
            return [r for r in self._requests if r.execution_uuid == execution_uuid]

    def bodies(self, method: str | None = None,
               path: str | re.Pattern[str] | None = None) -> list[Any]:
        """The parsed bodies of the requests matching (method, path) as in `script()`."""
        rule = _Rule(method, path, ())
        with self._lock:
            return [r.json for r in self._requests if rule.matches(r.method, r.path)]

    def wait_for(self, predicate: Callable[[RecordedRequest], bool] | None = None,
                 timeout: float = 10.0, *, count: int = 1) -> RecordedRequest:
        """Block until `count` recorded requests satisfy `predicate` (any request when None),
        counting those already recorded; return the count-th. Raises TimeoutError.

        Blocks on a Condition that each new record notifies, so nothing polls.
        """
        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if predicate is None or predicate(r)]

        with self._changed:
            found = self._changed.wait_for(lambda: len(matching()) >= count, timeout)
            if not found:
                seen = [(r.method, r.path, r.response_status, r.json) for r in self._requests]
                raise TimeoutError(
                    f"no {count} matching request(s) within {timeout} s; recorded: {seen}")
            return matching()[count - 1]

    def clear_records(self) -> None:
        """Forget the recorded requests and violations (the server's state is kept)."""
        with self._lock:
            self._requests.clear()
            self._violations.clear()

    # ---- server state -----------------------------------------------------------------

    @property
    def executions(self) -> dict[str, dict[str, Any]]:
        """A deep copy of the stored executions, uuid → the JSON the server would return."""
        with self._lock:
            return copy.deepcopy(self._executions)

    def execution(self, execution_uuid: str) -> dict[str, Any]:
        """A deep copy of one stored execution (KeyError when unknown)."""
        with self._lock:
            return copy.deepcopy(self._executions[execution_uuid])

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """A deep copy of the stored tasks, uuid → task."""
        with self._lock:
            return copy.deepcopy(self._tasks)

    def task(self, name: str) -> dict[str, Any]:
        """A deep copy of the task called `name` (KeyError when unknown)."""
        with self._lock:
            for task in self._tasks.values():
                if task["name"] == name:
                    return copy.deepcopy(task)
        raise KeyError(name)

    def create_task(self, name: str, *, max_concurrency: int | None = None,
                    run_environment: str | None = None, passive: bool = True,
                    was_auto_created: bool = False, **fields: Any) -> dict[str, Any]:
        """Create a task the way a developer would in the dashboard; returns a copy."""
        with self._lock:
            task = self._new_task({
                "name": name, "max_concurrency": max_concurrency, "passive": passive,
                "was_auto_created": was_auto_created, **fields})
            if run_environment is not None:
                task["run_environment"] = self._add_run_environment(run_environment)
            return copy.deepcopy(task)

    def create_execution(self, task_name: str = "pre-created-task", *,
                         status: str = "MANUALLY_STARTED", **fields: Any) -> dict[str, Any]:
        """Create an execution as the server does when a user starts a task from the
        dashboard (the wrapper then attaches with PATCH /task_executions/<uuid>/). The task is
        created when missing. `fields` are stored as sent. Returns a copy (see ["uuid"])."""
        with self._lock:
            task = self._find_task_by_name(task_name, None) or self._new_task({
                "name": task_name, "passive": False, "was_auto_created": False})
            execution = self._new_execution(task, {"status": status, **fields},
                                            user="exampleuser")
            return copy.deepcopy(execution)

    def mark_stopped(self, execution_uuid: str, user: str = "exampleuser") -> None:
        """Stop an execution like the dashboard does (PATCH status STOPPING): the stored
        status becomes STOPPING, `killed_by`/`kill_started_at` are set, and the wrapper's next
        RUNNING heartbeat makes it STOPPED and gets 409."""
        with self._lock:
            execution = self._executions[execution_uuid]
            now = _now_iso()
            execution["status"] = "STOPPING"
            execution["killed_by"] = execution["killed_by"] or user
            execution["kill_started_at"] = execution["kill_started_at"] or now
            execution["updated_at"] = now
            self._changed.notify_all()

    def set_status(self, execution_uuid: str, status: str) -> None:
        """Overwrite the stored status with no transition check (e.g. FAILED, ABANDONED,
        MARKED_DONE), to set up the 409 cases of the transition rules."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._lock:
            self._executions[execution_uuid]["status"] = status
            self._executions[execution_uuid]["updated_at"] = _now_iso()
            self._changed.notify_all()

    # ---- request handling (called by the handler threads) ------------------------------

    def _decide(self, incoming: _Incoming) -> _Decision:
        """Check, choose the behaviour, apply state changes and record: all under the lock so
        that a recorded request always comes with its consequences."""
        with self._lock:
            problems = self._check(incoming)
            behaviour = self._next_behaviour(incoming.method, incoming.path)
            execution_uuid: str | None = None
            decision: _Decision
            if behaviour is None or isinstance(behaviour, Passthrough):
                reply, execution_uuid = self._safe_answer(incoming, problems)
                decision = _Decision(reply=reply)
            elif isinstance(behaviour, Respond):
                decision = _Decision(reply=_Reply.of(
                    behaviour.status,
                    default_body(behaviour.status, incoming.method)
                    if behaviour.body is DEFAULT else behaviour.body,
                    behaviour.headers))
            elif isinstance(behaviour, Hang):
                decision = (_Decision(reset=True) if self._closing.is_set()
                            else _Decision(hang=self._hang_release))
            elif isinstance(behaviour, Reset):
                decision = _Decision(reset=True)
            elif isinstance(behaviour, Slow):
                if behaviour.response is None:
                    reply, execution_uuid = self._safe_answer(incoming, problems)
                else:
                    reply = _Reply.of(
                        behaviour.response.status,
                        default_body(behaviour.response.status, incoming.method)
                        if behaviour.response.body is DEFAULT else behaviour.response.body,
                        behaviour.response.headers)
                decision = _Decision(reply=reply, slow_seconds=behaviour.seconds)
            elif isinstance(behaviour, Malformed):
                if behaviour.process:
                    _, execution_uuid = self._safe_answer(incoming, problems)
                status = behaviour.status or (201 if incoming.method == "POST" else 200)
                decision = _Decision(reply=_Reply(
                    status, behaviour.body, {"Content-Type": "application/json"}))
            else:
                raise TypeError(f"unknown behaviour {behaviour!r}")

            if execution_uuid is None:
                match = _DETAIL_RE.fullmatch(incoming.path)
                if match and unquote(match.group(1)) in self._executions:
                    execution_uuid = unquote(match.group(1))
            messages = tuple(
                f"{incoming.method} {incoming.path}: " + (f"{where}: " if where else "") + message
                for where, message in problems.items)
            self._violations.extend(messages)
            self._requests.append(RecordedRequest(
                method=incoming.method, path=incoming.path, query=incoming.query,
                headers=incoming.headers, body=incoming.body, json=incoming.json,
                timestamp=incoming.timestamp,
                response_status=decision.reply.status if decision.reply else None,
                behaviour=None if behaviour is None else type(behaviour).__name__,
                execution_uuid=execution_uuid, violations=messages))
            self._changed.notify_all()
            return decision

    def _safe_answer(self, incoming: _Incoming, problems: _Problems) -> tuple[
            _Reply, str | None]:
        """`_answer`, but a bug of the fake (e.g. a wrongly typed field let through with
        reject_violations=False) becomes a 500 and a violation instead of a dropped request."""
        try:
            return self._answer(incoming, problems)
        except Exception as e:
            problems.add(None, f"the fake server failed: {type(e).__name__}: {e}")
            return _Reply.of(500, {"error_class": type(e).__name__,
                                   "error_message": str(e)}), None

    def _next_behaviour(self, method: str, path: str) -> Behaviour | None:
        for rule in self._scripts:
            if rule.behaviours and rule.matches(method, path):
                return rule.behaviours.pop(0)
        for rule in self._always:
            if rule.matches(method, path):
                return rule.behaviours[0]
        return None

    # ---- protocol checks ----------------------------------------------------------------

    def _check(self, incoming: _Incoming) -> _Problems:
        """Everything the wrapper must get right whatever the server's state (upstream
        spec §3.1-§3.4). Server-side validation that depends on state is in `_answer`."""
        problems = _Problems()
        for message in incoming.parse_problems:
            problems.add(None, message)
        authorization = incoming.header("Authorization")
        if authorization is None:
            problems.add(None, "no Authorization header")
        elif not re.fullmatch(r"(Bearer|Token) \S+", authorization):
            problems.add(None, f"Authorization is not 'Bearer <key>': {authorization!r}")
        accept = incoming.header("Accept") or ""
        if "application/json" not in accept:
            problems.add(None, f"Accept must include application/json, got {accept!r}")
        if not (incoming.header("User-Agent") or "").strip():
            problems.add(None, "no User-Agent header")

        collection = _COLLECTION_RE.fullmatch(incoming.path)
        detail = _DETAIL_RE.fullmatch(incoming.path)
        if not (collection or detail):
            problems.add(None, "unknown endpoint (the wrapper only uses /api/v1/task_executions/)")
            return problems
        if (collection and incoming.method != "POST") or (
                detail and incoming.method != "PATCH"):
            problems.add(None, f"the wrapper never sends {incoming.method} to this endpoint")
            return problems
        unknown_query = set(incoming.query) - ({"content"} if detail else set())
        if unknown_query:
            problems.add(None, f"unexpected query parameters {sorted(unknown_query)}")
        if detail and "content" in incoming.query and incoming.query["content"] != ["false"]:
            problems.add(None, f"content must be 'false', got {incoming.query['content']}")

        content_type = (incoming.header("Content-Type") or "").split(";")
        if content_type[0].strip().lower() != "application/json":
            problems.add(None, "Content-Type must be application/json, got "
                               f"{incoming.header('Content-Type')!r}")
        elif any(p.strip().lower().startswith("charset=")
                 and p.strip().lower() not in ("charset=utf-8", "charset=utf8")
                 for p in content_type[1:]):
            problems.add(None, "the JSON body must be UTF-8")
        body = incoming.json
        if incoming.parse_problems:
            return problems
        if not isinstance(body, dict):
            problems.add(None, "the body must be a JSON object")
            return problems

        self._check_fields(body, _BODY_FIELD_KINDS, problems, prefix="")
        if "status" not in body:
            problems.add("status", "This field is required (the wrapper always sends it).")
        elif "status" in body and body["status"] not in STATUSES:
            problems.add("status", f"must be one of the server's status names, got "
                                   f"{json.dumps(body['status'])}")
        if body.get("stop_reason") is not None and body["stop_reason"] not in STOP_REASONS:
            problems.add("stop_reason", f"unknown stop reason {json.dumps(body['stop_reason'])}")
        if collection:
            started_at = body.get("started_at")
            if started_at is None:
                problems.add("started_at", "This field is required (the start body has it).")
        for name in ("build", "deploy"):
            value = body.get(name)
            if value is not None and not (
                    isinstance(value, dict) and isinstance(value.get("task_execution"), dict)
                    and isinstance(value["task_execution"].get("uuid"), str)):
                problems.add(name, 'must be {"task_execution": {"uuid": "..."}}')
        if detail and "task" in body:
            problems.add("task", "only the start request (POST) carries a task")
        if collection:
            self._check_task(body, problems)
        return problems

    @staticmethod
    def _check_fields(body: Mapping[str, Any], kinds: Mapping[str, str], problems: _Problems,
                      prefix: str) -> None:
        for name, kind in kinds.items():
            if name in body:
                problem = _kind_problem(body[name], kind)
                if problem:
                    problems.add(prefix + name, problem)

    def _check_task(self, body: Mapping[str, Any], problems: _Problems) -> None:
        """The `task` object of a start request, including the two rejections the real
        server's Task validation makes for an auto-created task (§3.3)."""
        task = body.get("task")
        if task is None and "auto_created_task_properties" in body:
            task = body["auto_created_task_properties"]
        if task is None:
            problems.add("task", "This field is required.")
            return
        if not isinstance(task, dict):
            problems.add("task", "must be an object")
            return
        self._check_fields(task, _TASK_FIELD_KINDS, problems, prefix="task.")
        if "uuid" in task and not (isinstance(task["uuid"], str)
                                   and _UUID_RE.fullmatch(task["uuid"])):
            problems.add("task.uuid", f"must be a UUID string, got {json.dumps(task['uuid'])}")
        if not task.get("uuid") and not task.get("name"):
            problems.add("task", "has neither uuid nor name")
        run_env = task.get("run_environment")
        if run_env is not None and not (
                isinstance(run_env, dict)
                and all(isinstance(run_env.get(k), (str, type(None))) for k in ("name", "uuid"))):
            problems.add("task.run_environment", "must be an object with string name/uuid")
        if self._auto_creates(body):
            interval = task.get("heartbeat_interval_seconds")
            if _is_int(interval) and interval < 10:
                problems.add("heartbeat_interval_seconds",
                             "Ensure this value is greater than or equal to 10.")
            if task.get("passive") is False and task.get("execution_method_type") in (
                    None, "Unknown"):
                problems.add("passive", "Non-passive Tasks may not have an Unknown execution "
                                        "method")

    @staticmethod
    def _auto_creates(body: Mapping[str, Any]) -> bool:
        task = body.get("task")
        if task is None:
            return isinstance(body.get("auto_created_task_properties"), dict)
        return isinstance(task, dict) and task.get("was_auto_created") is True

    # ---- the server's answers -----------------------------------------------------------

    def _authenticate(self, incoming: _Incoming) -> tuple[ApiKey | None, _Reply | None]:
        """DRF token authentication as the server configures it (§2)."""
        authorization = incoming.header("Authorization")
        if not authorization:
            return None, _Reply.of(401, _detail_body(
                "Authentication credentials were not provided.", "not_authenticated",
                "NotAuthenticated"), {"WWW-Authenticate": 'Bearer realm="api"'})
        scheme, _, key = authorization.partition(" ")
        if scheme not in ("Bearer", "Token"):
            return None, _Reply.of(401, _detail_body(
                "Authentication credentials were not provided.", "not_authenticated",
                "NotAuthenticated"), {"WWW-Authenticate": 'Bearer realm="api"'})
        key = key.strip()
        if not key or " " in key:
            return None, _Reply.of(401, _detail_body(
                "Invalid token header. No credentials provided.", "authentication_failed",
                "AuthenticationFailed"), {"WWW-Authenticate": 'Bearer realm="api"'})
        info = self._keys.get(key)
        if info is None:
            return None, _Reply.of(401, _detail_body(
                "Invalid token.", "authentication_failed", "AuthenticationFailed"),
                {"WWW-Authenticate": 'Bearer realm="api"'})
        if not info.enabled:
            return None, _Reply.of(403, _detail_body(
                "Token is deactivated", "permission_denied", "PermissionDenied"))
        return info, None

    @staticmethod
    def _insufficient() -> _Reply:
        return _Reply.of(403, _detail_body(
            "Insufficient Group access level", "permission_denied", "PermissionDenied"))

    def _answer(self, incoming: _Incoming, problems: _Problems) -> tuple[_Reply, str | None]:
        """The real server's answer (and its state change); returns the execution uuid the
        request was about, if any."""
        collection = _COLLECTION_RE.fullmatch(incoming.path)
        detail = _DETAIL_RE.fullmatch(incoming.path)
        if not (collection or detail):
            return _Reply.of(404, {"detail": "Not found."}), None
        key, failure = self._authenticate(incoming)
        if failure is not None or key is None:
            return failure or self._insufficient(), None
        if (collection and incoming.method != "POST") or (detail and incoming.method != "PATCH"):
            detail_text = f'Method "{incoming.method}" not allowed.'
            return _Reply.of(405, _detail_body(
                detail_text, "method_not_allowed", "MethodNotAllowed")), None
        if key.level_value < _TASK_LEVEL:
            return self._insufficient(), None
        if detail:
            execution_uuid = unquote(detail.group(1))
            if execution_uuid not in self._executions:
                return _Reply.of(404, {"detail": "No TaskExecution matches the given query."}), None
            if problems and self.reject_violations:
                return _Reply.of(400, problems.body()), execution_uuid
            return self._update(incoming, key, execution_uuid), execution_uuid
        if problems and self.reject_violations:
            return _Reply.of(400, problems.body()), None
        return self._create(incoming, key)

    def _create(self, incoming: _Incoming, key: ApiKey) -> tuple[_Reply, str | None]:
        """POST /task_executions/: resolve or auto-create the task, check concurrency,
        create (§3, §6, §9)."""
        body: dict[str, Any] = incoming.json if isinstance(incoming.json, dict) else {}
        task_object = body.get("task")
        if task_object is None:
            task_object = body.get("auto_created_task_properties")
        if not isinstance(task_object, dict):
            return _Reply.of(400, _validation_body({"task": ["This field is required."]})), None
        auto = self._auto_creates(body)

        task: dict[str, Any] | None
        if task_object.get("uuid"):
            task = self._tasks.get(str(task_object["uuid"]))
            if task is not None and not self._visible(task, key):
                task = None
            if task is None:
                return self._task_does_not_exist(), None
            name = task_object.get("name")
            if name and name != task["name"]:
                return _Reply.of(422, _detail_body(
                    f"Task {task['uuid']} is named {task['name']!r}, not {name!r}",
                    "unprocessable_entity", "UnprocessableEntity")), None
        else:
            task = self._find_task_by_name(str(task_object.get("name")), key)
        if task is None and not auto:
            return self._task_does_not_exist(), None

        if auto:
            if key.level_value < _DEVELOPER_LEVEL:
                return self._insufficient(), None
            run_env, failure = self._resolve_run_environment(task_object, key, new=task is None)
            if failure is not None:
                return failure, None
            if task is None:
                task = self._new_task(task_object)
                task["run_environment"] = run_env
            elif self._task_update_allowed(task, body):
                self._apply_task_object(task, task_object)
                if run_env is not None:
                    task["run_environment"] = run_env

        assert task is not None
        limit = task.get("max_concurrency")
        if _is_int(limit) and limit > 0:
            running = sum(1 for e in self._executions.values()
                          if e["task"]["uuid"] == task["uuid"] and e["status"] == "RUNNING")
            if running >= limit:
                return _Reply(409), None  # empty body, no Retry-After (§6)

        fields = {k: v for k, v in body.items() if k not in ("task",)}
        execution = self._new_execution(task, fields, user=key.user)
        if auto:
            execution["auto_created_task_properties"] = {
                k: copy.deepcopy(v) for k, v in task_object.items() if k != "run_environment"}
        return _Reply.of(201, execution), execution["uuid"]

    def _update(self, incoming: _Incoming, key: ApiKey, execution_uuid: str) -> _Reply:
        """PATCH /task_executions/<uuid>/: the status-transition rules of §5 and §7."""
        body: dict[str, Any] = incoming.json if isinstance(incoming.json, dict) else {}
        execution = self._executions[execution_uuid]
        stored = execution["status"]
        requested = str(body.get("status") or "RUNNING").upper()
        now = _now_iso()
        updates = {k: v for k, v in body.items() if k in _EXECUTION_FIELDS}
        updates["status"] = requested

        if requested == "RUNNING":
            if stored not in ("RUNNING", "MANUALLY_STARTED", "STOPPING"):
                return _Reply.of(409, _validation_body(
                    {"status": f"Status cannot be set to RUNNING after {stored}"}))
            if stored == "STOPPING":
                updates["status"] = "STOPPED"
                if updates.get("finished_at") is None:
                    updates["finished_at"] = now
                updates["kill_finished_at"] = now
            elif updates.get("last_heartbeat_at") is None:
                updates["last_heartbeat_at"] = now
        elif requested in _FINAL_CHECKED:
            if stored not in (requested, "RUNNING", "MANUALLY_STARTED", "STOPPING"):
                return _Reply.of(409, _validation_body(
                    {"status": f"Status cannot be set to {requested} after {stored}"}))
            if stored == "STOPPING" and requested in ("FAILED", "ABORTED"):
                updates["status"] = "STOPPED"
            if updates.get("finished_at") is None and execution["finished_at"] is None:
                updates["finished_at"] = now
        elif requested == "STOPPING":
            updates.setdefault("killed_by", key.user)
            updates.setdefault("kill_started_at", now)

        self._apply_execution_fields(execution, updates)
        execution["updated_at"] = now
        if requested == "RUNNING" and execution["status"] != "RUNNING":
            return _Reply.of(409, execution)  # the stop handshake: 409 with the full body
        if incoming.query.get("content") == ["false"]:
            return _Reply(204)
        return _Reply.of(200, execution)

    # ---- state helpers (lock held) ------------------------------------------------------

    @staticmethod
    def _task_does_not_exist() -> _Reply:
        return _Reply.of(422, _validation_body({"task": ["Task does not exist"]},
                                               "UnprocessableEntity"))

    def _visible(self, task: Mapping[str, Any], key: ApiKey | None) -> bool:
        if key is None or key.run_environment is None:
            return True
        run_env = task.get("run_environment") or {}
        return bool(run_env.get("name") == key.run_environment)

    def _find_task_by_name(self, name: str, key: ApiKey | None) -> dict[str, Any] | None:
        for task in self._tasks.values():
            if task["name"] == name and self._visible(task, key):
                return task
        return None

    def _add_run_environment(self, name: str) -> dict[str, Any]:
        if name not in self._run_envs:
            self._run_envs[name] = {"uuid": str(uuid_module.uuid4()), "name": name}
        return dict(self._run_envs[name])

    def _resolve_run_environment(self, task_object: Mapping[str, Any], key: ApiKey,
                                 new: bool) -> tuple[dict[str, Any] | None, _Reply | None]:
        """Resolve `task.run_environment` by uuid or name. Run environments are never
        auto-created by the real server; the fake does so only when it was built without a
        `run_environments` list (lenient mode)."""
        wanted = task_object.get("run_environment") or {}
        name, env_uuid = wanted.get("name"), wanted.get("uuid")
        missing = _Reply.of(422, _validation_body(
            {"run_environment": ["Run Environment does not exist"]}, "UnprocessableEntity"))
        if env_uuid:
            found = next((e for e in self._run_envs.values() if e["uuid"] == env_uuid), None)
            return (dict(found), None) if found else (None, missing)
        if name:
            if self._known_run_environments is not None and name not in self._run_envs:
                return None, missing
            if key.run_environment is not None and name != key.run_environment:
                return None, missing
            return self._add_run_environment(name), None
        if new and self._known_run_environments is not None:
            return None, _Reply.of(400, _validation_body(
                {"run_environment": "Run Environment is required"}))
        if new and key.run_environment is not None:
            return self._add_run_environment(key.run_environment), None
        return None, None

    def _task_update_allowed(self, task: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
        """The server skips the auto-create update when the task's latest execution has a
        higher task_version_number than the request."""
        requested = body.get("task_version_number")
        if not _is_int(requested):
            return True
        latest = [e for e in self._executions.values() if e["task"]["uuid"] == task["uuid"]]
        if not latest:
            return True
        newest = max(latest, key=lambda e: e["created_at"])["task_version_number"]
        return not (_is_int(newest) and newest > requested)

    def _new_task(self, task_object: Mapping[str, Any]) -> dict[str, Any]:
        task_uuid = str(uuid_module.uuid4())
        task: dict[str, Any] = {
            "uuid": task_uuid, "name": task_object.get("name"),
            "url": self._url(f"/api/v1/tasks/{task_uuid}/"),
            "dashboard_url": self._url(f"/#/tasks/{task_uuid}"),
            "max_concurrency": None, "was_auto_created": False, "passive": True,
            "run_environment": None, **copy.deepcopy(dict(_TASK_DEFAULTS)),
            "created_at": _now_iso()}
        self._apply_task_object(task, task_object)
        self._tasks[task_uuid] = task
        return task

    @staticmethod
    def _apply_task_object(task: dict[str, Any], task_object: Mapping[str, Any]) -> None:
        for name, value in task_object.items():
            if name not in _TASK_IGNORED:
                task[name] = copy.deepcopy(value)
        task["updated_at"] = _now_iso()

    def _url(self, path: str) -> str:
        return self.base_url + path if self._httpd is not None else path

    def _new_execution(self, task: Mapping[str, Any], fields: Mapping[str, Any],
                       user: str) -> dict[str, Any]:
        execution_uuid = str(uuid_module.uuid4())
        now = _now_iso()
        execution: dict[str, Any] = dict.fromkeys(_EXECUTION_FIELDS)
        execution.update({
            "url": self._url(f"/api/v1/task_executions/{execution_uuid}/"),
            "uuid": execution_uuid,
            "dashboard_url": self._url(f"/#/task_executions/{execution_uuid}"),
            "task": {"uuid": task["uuid"], "url": task["url"], "name": task["name"]},
            "started_by": user, "failed_attempts": 0, "timed_out_attempts": 0,
            "api_base_url": self._url(""), "created_at": now, "updated_at": now,
            "status": "RUNNING"})
        status = str(fields.get("status") or "RUNNING").upper()
        updates = {k: v for k, v in fields.items()
                   if k in _EXECUTION_FIELDS and k not in _SERVER_OWNED}
        updates["status"] = status
        if status == "RUNNING" and updates.get("last_heartbeat_at") is None:
            updates["last_heartbeat_at"] = now
        if status in _FINAL_CHECKED and updates.get("finished_at") is None:
            updates["finished_at"] = now
        self._apply_execution_fields(execution, updates)
        if execution["started_at"] is None:
            execution["started_at"] = now
        self._executions[execution_uuid] = execution
        return execution

    @staticmethod
    def _apply_execution_fields(execution: dict[str, Any], updates: Mapping[str, Any]) -> None:
        """Store like the serializer: unknown keys dropped, write-once fields kept, JSON
        objects deep-merged, date-times normalized to UTC `Z`, text trimmed."""
        for name, sent in updates.items():
            if name not in _EXECUTION_FIELDS or name in _SERVER_OWNED:
                continue
            if name in _WRITE_ONCE and execution.get(name) is not None:
                continue
            value = sent
            if name in _DATETIME_FIELDS and isinstance(value, str):
                parsed = _parse_datetime(value)
                value = _render_datetime(parsed) if parsed else value
            if name in _TRIMMED and isinstance(value, str):
                value = value.strip()
            if name in _DEEP_MERGED and isinstance(value, dict) and isinstance(
                    execution.get(name), dict):
                value = _deep_merge(execution[name], value)
            execution[name] = copy.deepcopy(value)


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _Handler(TrackedHandler):
    """Reads each request completely, lets the fake decide, then performs the decision."""

    server_version = "FakeCloudReactor/1.0"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> tuple[bytes, list[str]]:
        """The request body, by Content-Length or chunked transfer encoding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            try:
                while True:
                    size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks), []
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(65537)
            except ValueError:
                self.close_connection = True
                return b"".join(chunks), ["malformed chunked request body"]
        length = self.headers.get("Content-Length")
        if length is None:
            return b"", []
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            return b"", [f"invalid Content-Length {length!r}"]
        return self.rfile.read(size), []

    def _handle(self) -> None:
        fake = self.server.fake
        timestamp = time.monotonic()
        parts = urlsplit(self.path)
        body, problems = self._read_body()
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
            except UnicodeDecodeError:
                problems.append("the body is not UTF-8")
            except ValueError as e:
                problems.append(f"the body is not valid JSON: {e}")
        elif self.command in ("POST", "PATCH"):
            problems.append("the request has no body")
        incoming = _Incoming(
            method=self.command, path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=dict(self.headers.items()), body=body, json=parsed,
            parse_problems=tuple(problems), timestamp=timestamp)
        decision = fake._decide(incoming)
        if not fake.keep_alive:
            self.close_connection = True
        if decision.hang is not None:
            decision.hang.wait()
            self.close_connection = True
        elif decision.reset:
            self._reset()
        elif decision.reply is not None:
            self._send(decision.reply, decision.slow_seconds)

    def _send(self, reply: _Reply, slow_seconds: float | None) -> None:
        closing = self.server.fake._closing
        try:
            if slow_seconds is not None and not reply.body and closing.wait(slow_seconds):
                self.close_connection = True
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if slow_seconds is None or not reply.body:
                self.wfile.write(reply.body)
                return
            pieces = min(len(reply.body), 5)
            step = -(-len(reply.body) // pieces)
            for start in range(0, len(reply.body), step):
                if closing.wait(slow_seconds / pieces):
                    self.close_connection = True
                    return
                self.wfile.write(reply.body[start:start + step])
        except OSError:  # the client went away: nothing to answer to
            self.close_connection = True

    def _reset(self) -> None:
        """Close with SO_LINGER 0 so the kernel sends RST instead of FIN. The buffered
        reader made by makefile() is closed first: socket.close() only really closes the
        descriptor once no such file refers to it."""
        self.close_connection = True
        self.server.fake._connection_closing(self.connection)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.rfile.close()  # wfile is a plain _SocketWriter that holds no reference
        self.connection.close()


def _reject_constant(name: str) -> Any:
    """json.loads accepts NaN/Infinity, which are not JSON: the server's parser rejects them."""
    raise ValueError(f"{name} is not valid JSON")


FakeCloudReactor.handler_class = _Handler
