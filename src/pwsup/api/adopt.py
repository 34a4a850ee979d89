"""Finding the execution a start request created when its answer never came back.

A start request can reach the server, create the execution and still fail for the client
(the connection dropped, a proxy answered 502 after the server had done its work). Sent
again, it would create a second execution and leave the first RUNNING with no one to report
on it — and, with a concurrency limit, the retry would even be refused (409) because of
that very execution. So before another attempt the RUNNING executions of the Task are
listed, and one that is ours is adopted.

What makes one ours is what the start request sent that the server stores: the start
time (to the microsecond, as pwsup sends it), the Task, and the host name and command
when they were sent. (The server stores no process id, so the start time stands for it.)
These are pure functions; the reporter makes the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from collections.abc import Mapping

EXECUTIONS = "/api/v1/task_executions/"


def lookup_path(task: Mapping[str, Any]) -> str:
    """Where the RUNNING executions of the Task a start body names are listed. The server
    filters by Task uuid; a Task known by name only is searched for by name (the search
    also matches other text, so the name is checked again on every row)."""
    query = {"status__in": "RUNNING"}
    if task.get("uuid"):
        query["task__uuid"] = str(task["uuid"])
    else:
        query["search"] = str(task.get("name") or "")
    return f"{EXECUTIONS}?{urlencode(query)}"


def answer_may_be_lost(status: int | None) -> bool:
    """Whether a failed start attempt may have created the execution all the same: no
    answer at all, or a server error (a proxy's, after the server did its work)."""
    return status is None or status >= 500


def worth_looking(status: int | None, *, earlier_lost: bool) -> bool:
    """Whether to look for our execution after a failed start attempt: its own answer may
    be lost, or it is a conflict after an earlier answer was (the execution in the way may
    be ours; a conflict before any lost answer cannot be)."""
    return answer_may_be_lost(status) or (status == 409 and earlier_lost)


def find_ours(listing: object, sent: Mapping[str, Any]) -> dict[str, Any] | None:
    """The execution in a list answer that the start body `sent` created, if any."""
    rows = listing.get("results") if isinstance(listing, dict) else listing
    if not isinstance(rows, list):
        return None
    for row in rows:
        if isinstance(row, dict) and _is_ours(row, sent):
            return row
    return None


def _is_ours(row: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    if row.get("status") != "RUNNING" or not isinstance(row.get("uuid"), str):
        return False
    if not _same_instant(row.get("started_at"), sent.get("started_at")):
        return False
    task, sent_task = row.get("task"), sent.get("task")
    if isinstance(sent_task, dict):
        if not isinstance(task, dict):
            return False
        for key in ("uuid", "name"):
            if sent_task.get(key) and task.get(key) != sent_task[key]:
                return False
    return all(row.get(key) == sent[key] for key in ("hostname", "process_command")
               if sent.get(key))


def _same_instant(a: object, b: object) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    from datetime import datetime

    try:
        return datetime.fromisoformat(_zoned(a)) == datetime.fromisoformat(_zoned(b))
    except ValueError:
        return False


def _zoned(text: str) -> str:
    return text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
