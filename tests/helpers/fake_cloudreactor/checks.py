"""The protocol checker: everything the wrapper must get right whatever the server's state
— headers, endpoint and method, query, content type, a JSON object body, the type of every
known field, the shape of the task object.

Each problem becomes a violation ("METHOD path: field: message") that a test sees in
`api.violations`, and, unless the fake was built with `reject_violations=False`, a 400 with
the server's validation-error body. Validation that depends on the server's state (unknown
task, status transitions) belongs to the routes instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .protocol import (
    ANY,
    BODY_FIELD_KINDS,
    BOOL,
    COLLECTION_RE,
    DATETIME,
    DETAIL_RE,
    DICT,
    INT,
    NUMBER,
    STATUSES,
    STOP_REASONS,
    STR,
    STR_LIST,
    TASK_FIELD_KINDS,
    UUID_RE,
)
from .records import Incoming
from .replies import validation_body
from .values import is_int, parse_datetime

_WANTED = {
    INT: "an integer", BOOL: "a boolean", NUMBER: "a number", STR: "a string",
    DICT: "an object", STR_LIST: "a list of strings",
    DATETIME: "an ISO-8601 date-time with a time zone", ANY: "anything"}


class Problems:
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
        return validation_body(errors)

    def __bool__(self) -> bool:
        return bool(self.items)


def kind_problem(value: Any, kind: str) -> str | None:
    """Why `value` is not of `kind` (None: it is). Null is accepted except for bools."""
    if value is None:
        return "must not be null" if kind == BOOL else None
    ok = {
        INT: is_int(value),
        BOOL: isinstance(value, bool),
        NUMBER: isinstance(value, (int, float)) and not isinstance(value, bool),
        STR: isinstance(value, str),
        DICT: isinstance(value, dict),
        STR_LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        DATETIME: isinstance(value, str) and parse_datetime(value) is not None,
        ANY: True,
    }[kind]
    if ok:
        return None
    return f"must be {_WANTED[kind]}, got {json.dumps(value)[:80]}"


def auto_creates(body: Mapping[str, Any]) -> bool:
    """Whether a start body asks the server to create (or update) its task."""
    task = body.get("task")
    if task is None:
        return isinstance(body.get("auto_created_task_properties"), dict)
    return isinstance(task, dict) and task.get("was_auto_created") is True


def check(incoming: Incoming) -> Problems:
    """Every protocol problem of one request, in the order a reader would find them."""
    problems = Problems()
    for message in incoming.parse_problems:
        problems.add(None, message)
    _check_headers(incoming, problems)
    collection = COLLECTION_RE.fullmatch(incoming.path)
    detail = DETAIL_RE.fullmatch(incoming.path)
    if not (collection or detail):
        problems.add(None, "unknown endpoint (the wrapper only uses /api/v1/task_executions/)")
        return problems
    if collection and incoming.method == "GET":
        _check_listing(incoming, problems)
        return problems
    if (collection and incoming.method != "POST") or (detail and incoming.method != "PATCH"):
        problems.add(None, f"the wrapper never sends {incoming.method} to this endpoint")
        return problems
    _check_query_and_type(incoming, problems, detail is not None)
    body = incoming.json
    if incoming.parse_problems:
        return problems
    if not isinstance(body, dict):
        problems.add(None, "the body must be a JSON object")
        return problems
    _check_body(body, problems, creating=collection is not None)
    if collection:
        _check_task(body, problems)
    return problems


LISTING_QUERY = frozenset({"task__uuid", "status__in", "search", "limit", "offset"})


def _check_listing(incoming: Incoming, problems: Problems) -> None:
    """The wrapper lists executions only to find one it created whose answer was lost:
    the RUNNING ones of its Task, with filters the server has, and no body."""
    unknown = set(incoming.query) - LISTING_QUERY
    if unknown:
        problems.add(None, f"filters the server does not have (ignored there): {sorted(unknown)}")
    if incoming.query.get("status__in") != ["RUNNING"]:
        problems.add(None, "the lookup must ask for RUNNING executions only")
    if not ({"task__uuid", "search"} & set(incoming.query)):
        problems.add(None, "the lookup must name the Task (task__uuid or search)")
    if incoming.body:
        problems.add(None, "a GET has no body")


def _check_headers(incoming: Incoming, problems: Problems) -> None:
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


def _check_query_and_type(incoming: Incoming, problems: Problems, detail: bool) -> None:
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


def _check_body(body: Mapping[str, Any], problems: Problems, creating: bool) -> None:
    _check_fields(body, BODY_FIELD_KINDS, problems, prefix="")
    if "status" not in body:
        problems.add("status", "This field is required (the wrapper always sends it).")
    elif body["status"] not in STATUSES:
        problems.add("status", f"must be one of the server's status names, got "
                               f"{json.dumps(body['status'])}")
    if body.get("stop_reason") is not None and body["stop_reason"] not in STOP_REASONS:
        problems.add("stop_reason", f"unknown stop reason {json.dumps(body['stop_reason'])}")
    if creating and body.get("started_at") is None:
        problems.add("started_at", "This field is required (the start body has it).")
    for name in ("build", "deploy"):
        value = body.get(name)
        if value is not None and not (
                isinstance(value, dict) and isinstance(value.get("task_execution"), dict)
                and isinstance(value["task_execution"].get("uuid"), str)):
            problems.add(name, 'must be {"task_execution": {"uuid": "..."}}')
    if not creating and "task" in body:
        problems.add("task", "only the start request (POST) carries a task")
    metadata = body.get("other_runtime_metadata")
    if isinstance(metadata, dict) and "pwsup_usage" in metadata:
        _check_usage(metadata["pwsup_usage"], problems)


USAGE_FIGURES = {"user_seconds": NUMBER, "system_seconds": NUMBER, "max_rss_bytes": INT,
                 "wall_seconds": NUMBER}
"""What pwsup reports an attempt cost (other_runtime_metadata.pwsup_usage, docs/protocol.md):
the server stores it as JSON, so the fake checks its shape for it."""


def _check_usage(usage: Any, problems: Problems) -> None:
    where = "other_runtime_metadata.pwsup_usage"
    if not isinstance(usage, dict):
        problems.add(where, "must be an object")
        return
    if not (is_int(usage.get("attempt")) and usage["attempt"] >= 1):
        problems.add(f"{where}.attempt", "must be an attempt number (1 or more)")
    groups = [(where, usage)]
    if "all_attempts" in usage:
        groups.append((f"{where}.all_attempts", usage["all_attempts"]))
    for prefix, figures in groups:
        if not isinstance(figures, dict):
            problems.add(prefix, "must be an object")
            continue
        for name, kind in USAGE_FIGURES.items():
            value = figures.get(name)
            if value is None or kind_problem(value, kind) or value < 0:
                problems.add(f"{prefix}.{name}", f"must be a number >= 0, got {value!r}")
    exceeded = usage.get("memory_limit_exceeded")
    if exceeded is not None and not (
            isinstance(exceeded, dict)
            and all(is_int(exceeded.get(k)) and exceeded[k] > 0
                    for k in ("rss_bytes", "limit_bytes"))
            and exceeded["rss_bytes"] > exceeded["limit_bytes"]):
        problems.add(f"{where}.memory_limit_exceeded",
                     "must be {rss_bytes, limit_bytes}, positive, rss over the limit")


def _check_fields(body: Mapping[str, Any], kinds: Mapping[str, str], problems: Problems,
                  prefix: str) -> None:
    for name, kind in kinds.items():
        if name in body:
            problem = kind_problem(body[name], kind)
            if problem:
                problems.add(prefix + name, problem)


def _check_task(body: Mapping[str, Any], problems: Problems) -> None:
    """The `task` object of a start request, including the two rejections the real
    server's Task validation makes for an auto-created task."""
    task = body.get("task")
    if task is None and "auto_created_task_properties" in body:
        task = body["auto_created_task_properties"]
    if task is None:
        problems.add("task", "This field is required.")
        return
    if not isinstance(task, dict):
        problems.add("task", "must be an object")
        return
    _check_fields(task, TASK_FIELD_KINDS, problems, prefix="task.")
    if "uuid" in task and not (isinstance(task["uuid"], str)
                               and UUID_RE.fullmatch(task["uuid"])):
        problems.add("task.uuid", f"must be a UUID string, got {json.dumps(task['uuid'])}")
    if not task.get("uuid") and not task.get("name"):
        problems.add("task", "has neither uuid nor name")
    run_env = task.get("run_environment")
    if run_env is not None and not (
            isinstance(run_env, dict)
            and all(isinstance(run_env.get(k), (str, type(None))) for k in ("name", "uuid"))):
        problems.add("task.run_environment", "must be an object with string name/uuid")
    if auto_creates(body):
        interval = task.get("heartbeat_interval_seconds")
        if is_int(interval) and interval < 10:
            problems.add("heartbeat_interval_seconds",
                         "Ensure this value is greater than or equal to 10.")
        if task.get("passive") is False and task.get("execution_method_type") in (
                None, "Unknown"):
            problems.add("passive", "Non-passive Tasks may not have an Unknown execution "
                                    "method")
