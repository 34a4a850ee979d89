"""GET /api/v1/task_executions/: the list endpoint, with the filters the real server has.

`task__uuid=`, `status__in=A,B` (names, any case) and `search=` (a substring of the task's
name, the execution's uuid or hostname or last_status_message) narrow the list; other
query parameters are ignored, as the server ignores an unknown filter (`task__name=`
returns everything). Pagination is limit/offset, 50 by default, in `started_at` order.
"""

from __future__ import annotations

from typing import Any

from .records import ApiKey, Incoming
from .replies import Reply
from .state import ServerState

PAGE_SIZE = 50


def list_executions(state: ServerState, incoming: Incoming, key: ApiKey) -> Reply:
    query = incoming.query
    rows = [e for e in state.executions.values()
            if _visible(state, e, key) and _matches(e, query)]
    rows.sort(key=lambda e: str(e.get("started_at") or ""))
    limit = _int(query, "limit", PAGE_SIZE)
    offset = _int(query, "offset", 0)
    return Reply.of(200, {"count": len(rows), "next": None, "previous": None,
                          "results": rows[offset:offset + limit]})


def _visible(state: ServerState, execution: dict[str, Any], key: ApiKey) -> bool:
    task = state.tasks.get(execution["task"]["uuid"])
    return task is None or state.visible(task, key)


def _matches(execution: dict[str, Any], query: dict[str, list[str]]) -> bool:
    task_uuid = query.get("task__uuid", [None])[-1]
    if task_uuid and execution["task"]["uuid"] != task_uuid:
        return False
    statuses = query.get("status__in", [None])[-1]
    if statuses and execution["status"] not in {s.strip().upper() for s in statuses.split(",")}:
        return False
    search = query.get("search", [None])[-1]
    if search:
        texts = (execution["task"]["name"], execution["uuid"], execution.get("hostname"),
                 execution.get("last_status_message"))
        return any(isinstance(t, str) and search.lower() in t.lower() for t in texts)
    return True


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return max(0, int(query.get(name, [str(default)])[-1]))
    except ValueError:
        return default
