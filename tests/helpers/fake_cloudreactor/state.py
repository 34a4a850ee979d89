"""What the server keeps: run environments, tasks and task executions, stored the way the
real server's serializers store them.

`ServerState` is plain data and the rules for writing it (write-once fields, deep-merged
objects, normalized date-times, trimmed text, task visibility under a scoped key). It knows
nothing of HTTP; the routes decide what a request may change, and every method here runs
under the fake's lock.
"""

from __future__ import annotations

import copy
import uuid as uuid_module
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import unquote

from .protocol import (
    DATETIME_FIELDS,
    DEEP_MERGED,
    DETAIL_RE,
    EXECUTION_FIELDS,
    FINAL_CHECKED,
    SERVER_OWNED,
    TASK_DEFAULTS,
    TASK_IGNORED,
    TRIMMED,
    WRITE_ONCE,
)
from .records import ApiKey
from .replies import Reply, validation_body
from .values import deep_merge, is_int, now_iso, parse_datetime, render_datetime


class ServerState:
    """Run environments, tasks and executions, by uuid (see the module docstring).

    `url` makes a path absolute on the served fake (the JSON carries absolute URLs).
    `run_environments`: None accepts any run environment, created on first use; a
    collection makes only those names exist, as on the real server.
    """

    def __init__(self, url: Callable[[str], str],
                 run_environments: Collection[str] | None) -> None:
        self._url = url
        self.known_run_environments = (
            None if run_environments is None else frozenset(run_environments))
        self.tasks: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.run_envs: dict[str, dict[str, Any]] = {}
        for name in run_environments or ():
            self.add_run_environment(name)

    def execution_of_path(self, path: str) -> str | None:
        """The uuid of the stored execution a detail path names, if any."""
        match = DETAIL_RE.fullmatch(path)
        if match and unquote(match.group(1)) in self.executions:
            return unquote(match.group(1))
        return None

    def running_count(self, task: Mapping[str, Any]) -> int:
        return sum(1 for e in self.executions.values()
                   if e["task"]["uuid"] == task["uuid"] and e["status"] == "RUNNING")

    # ---- tasks and run environments -----------------------------------------------------

    @staticmethod
    def visible(task: Mapping[str, Any], key: ApiKey | None) -> bool:
        if key is None or key.run_environment is None:
            return True
        run_env = task.get("run_environment") or {}
        return bool(run_env.get("name") == key.run_environment)

    def find_task_by_name(self, name: str, key: ApiKey | None) -> dict[str, Any] | None:
        for task in self.tasks.values():
            if task["name"] == name and self.visible(task, key):
                return task
        return None

    def add_run_environment(self, name: str) -> dict[str, Any]:
        if name not in self.run_envs:
            self.run_envs[name] = {"uuid": str(uuid_module.uuid4()), "name": name}
        return dict(self.run_envs[name])

    def resolve_run_environment(self, task_object: Mapping[str, Any], key: ApiKey,
                                new: bool) -> tuple[dict[str, Any] | None, Reply | None]:
        """Resolve `task.run_environment` by uuid or name. Run environments are never
        auto-created by the real server; the fake does so only when it was built without a
        `run_environments` list (lenient mode)."""
        wanted = task_object.get("run_environment") or {}
        name, env_uuid = wanted.get("name"), wanted.get("uuid")
        missing = Reply.of(422, validation_body(
            {"run_environment": ["Run Environment does not exist"]}, "UnprocessableEntity"))
        if env_uuid:
            found = next((e for e in self.run_envs.values() if e["uuid"] == env_uuid), None)
            return (dict(found), None) if found else (None, missing)
        if name:
            if self.known_run_environments is not None and name not in self.run_envs:
                return None, missing
            if key.run_environment is not None and name != key.run_environment:
                return None, missing
            return self.add_run_environment(name), None
        if new and self.known_run_environments is not None:
            return None, Reply.of(400, validation_body(
                {"run_environment": "Run Environment is required"}))
        if new and key.run_environment is not None:
            return self.add_run_environment(key.run_environment), None
        return None, None

    def task_update_allowed(self, task: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
        """The server skips the auto-create update when the task's latest execution has a
        higher task_version_number than the request."""
        requested = body.get("task_version_number")
        if not is_int(requested):
            return True
        latest = [e for e in self.executions.values() if e["task"]["uuid"] == task["uuid"]]
        if not latest:
            return True
        newest = max(latest, key=lambda e: e["created_at"])["task_version_number"]
        return not (is_int(newest) and newest > requested)

    def new_task(self, task_object: Mapping[str, Any]) -> dict[str, Any]:
        task_uuid = str(uuid_module.uuid4())
        task: dict[str, Any] = {
            "uuid": task_uuid, "name": task_object.get("name"),
            "url": self._url(f"/api/v1/tasks/{task_uuid}/"),
            "dashboard_url": self._url(f"/#/tasks/{task_uuid}"),
            "max_concurrency": None, "was_auto_created": False, "passive": True,
            "run_environment": None, **copy.deepcopy(dict(TASK_DEFAULTS)),
            "created_at": now_iso()}
        self.apply_task_object(task, task_object)
        self.tasks[task_uuid] = task
        return task

    @staticmethod
    def apply_task_object(task: dict[str, Any], task_object: Mapping[str, Any]) -> None:
        for name, value in task_object.items():
            if name not in TASK_IGNORED:
                task[name] = copy.deepcopy(value)
        task["updated_at"] = now_iso()

    # ---- executions -------------------------------------------------------------------

    def new_execution(self, task: Mapping[str, Any], fields: Mapping[str, Any],
                      user: str) -> dict[str, Any]:
        execution_uuid = str(uuid_module.uuid4())
        now = now_iso()
        execution: dict[str, Any] = dict.fromkeys(EXECUTION_FIELDS)
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
                   if k in EXECUTION_FIELDS and k not in SERVER_OWNED}
        updates["status"] = status
        if status == "RUNNING" and updates.get("last_heartbeat_at") is None:
            updates["last_heartbeat_at"] = now
        if status in FINAL_CHECKED and updates.get("finished_at") is None:
            updates["finished_at"] = now
        self.apply_execution_fields(execution, updates)
        if execution["started_at"] is None:
            execution["started_at"] = now
        self.executions[execution_uuid] = execution
        return execution

    @staticmethod
    def apply_execution_fields(execution: dict[str, Any], updates: Mapping[str, Any]) -> None:
        """Store like the serializer: unknown keys dropped, write-once fields kept, JSON
        objects deep-merged, date-times normalized to UTC `Z`, text trimmed."""
        for name, sent in updates.items():
            if name not in EXECUTION_FIELDS or name in SERVER_OWNED:
                continue
            if name in WRITE_ONCE and execution.get(name) is not None:
                continue
            value = sent
            if name in DATETIME_FIELDS and isinstance(value, str):
                parsed = parse_datetime(value)
                value = render_datetime(parsed) if parsed else value
            if name in TRIMMED and isinstance(value, str):
                value = value.strip()
            if name in DEEP_MERGED and isinstance(value, dict) and isinstance(
                    execution.get(name), dict):
                value = deep_merge(execution[name], value)
            execution[name] = copy.deepcopy(value)
