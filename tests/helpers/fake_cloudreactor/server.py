"""`FakeCloudReactor`: the served fake and everything a test calls on it — scripting faults,
reading the recorded traffic, inspecting and changing the server's state as a user of the
dashboard would.

Serving (start, close, `with`, tracked connections) comes from `ServedFake`. One re-entrant
lock guards the state, the rules and the records; `_decide`, called by each handler thread,
checks, chooses, applies and records under it, so that a recorded request always comes with
its consequences and a test that waits for a request can read the state at once.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

# Relative: tests import the helpers both as `helpers.…` and `tests.helpers.…`, and each
# copy of this package must build on the `served` module of the same copy.
from ..served import ServedFake  # noqa: TID252
from .checks import Problems, check
from .faults import Behaviour, Decision, Rule, Rules, decide
from .handler import Handler
from .protocol import DEFAULT_API_KEY, DEVELOPER_LEVEL, STATUSES
from .records import ApiKey, Incoming, RecordedRequest
from .replies import Reply
from .routes import answer
from .state import ServerState
from .values import now_iso


class FakeCloudReactor(ServedFake):
    """An in-memory CloudReactor API server on 127.0.0.1 (see the package docstring).

    `api_keys` maps key → ApiKey, or → an access-level name/number (enabled, user
    "exampleuser"); default: {DEFAULT_API_KEY: developer}. `run_environments`: None accepts
    any run environment (created on first use, convenient for tests); a collection makes only
    those names exist, so unknown names get 422 and a new task without one gets 400, as on the
    real server. `reject_violations=False` records violations but answers such requests as if
    they were valid. `keep_alive=False` closes the connection after every response.
    """

    name = "fake-cloudreactor"
    handler_class = Handler

    def __init__(self, api_keys: Mapping[str, ApiKey | str | int] | None = None, *,
                 run_environments: Collection[str] | None = None,
                 reject_violations: bool = True, keep_alive: bool = True) -> None:
        keys = {DEFAULT_API_KEY: "developer"} if api_keys is None else api_keys
        self._keys: dict[str, ApiKey] = {
            k: v if isinstance(v, ApiKey) else ApiKey(level=v) for k, v in keys.items()}
        for key in self._keys.values():
            _ = key.level_value  # fail early on an unknown level name
        self.reject_violations = reject_violations
        self.keep_alive = keep_alive

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._state = ServerState(self._url, run_environments)
        self._rules = Rules()
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
            if info.enabled and info.level_value >= DEVELOPER_LEVEL:
                return key
        return next(iter(self._keys))

    def _url(self, path: str) -> str:
        return self.base_url + path if self._httpd is not None else path

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
            self._rules.scripts.append(Rule(method, path, behaviours))

    def always(self, method: str | None, behaviour: Behaviour, *,
               path: str | re.Pattern[str] | None = None) -> None:
        """Use `behaviour` for every matching request (when no script queue applies) until
        `clear_always()`. The most recently added matching rule wins."""
        with self._lock:
            self._rules.always.insert(0, Rule(method, path, [behaviour]))

    def clear_scripts(self) -> None:
        """Drop every queued behaviour that was not used yet."""
        with self._lock:
            self._rules.scripts.clear()

    def clear_always(self) -> None:
        """Drop every `always()` rule."""
        with self._lock:
            self._rules.always.clear()

    @property
    def pending_scripts(self) -> int:
        """How many queued behaviours are still unused (a test can assert 0)."""
        with self._lock:
            return self._rules.pending

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
        rule = Rule(method, path, ())
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
            return copy.deepcopy(self._state.executions)

    def execution(self, execution_uuid: str) -> dict[str, Any]:
        """A deep copy of one stored execution (KeyError when unknown)."""
        with self._lock:
            return copy.deepcopy(self._state.executions[execution_uuid])

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """A deep copy of the stored tasks, uuid → task."""
        with self._lock:
            return copy.deepcopy(self._state.tasks)

    def task(self, name: str) -> dict[str, Any]:
        """A deep copy of the task called `name` (KeyError when unknown)."""
        with self._lock:
            for task in self._state.tasks.values():
                if task["name"] == name:
                    return copy.deepcopy(task)
        raise KeyError(name)

    def create_task(self, name: str, *, max_concurrency: int | None = None,
                    run_environment: str | None = None, passive: bool = True,
                    was_auto_created: bool = False, **fields: Any) -> dict[str, Any]:
        """Create a task the way a developer would in the dashboard; returns a copy."""
        with self._lock:
            task = self._state.new_task({
                "name": name, "max_concurrency": max_concurrency, "passive": passive,
                "was_auto_created": was_auto_created, **fields})
            if run_environment is not None:
                task["run_environment"] = self._state.add_run_environment(run_environment)
            return copy.deepcopy(task)

    def create_execution(self, task_name: str = "pre-created-task", *,
                         status: str = "MANUALLY_STARTED", **fields: Any) -> dict[str, Any]:
        """Create an execution as the server does when a user starts a task from the
        dashboard (the wrapper then attaches with PATCH /task_executions/<uuid>/). The task is
        created when missing. `fields` are stored as sent. Returns a copy (see ["uuid"])."""
        with self._lock:
            task = self._state.find_task_by_name(task_name, None) or self._state.new_task({
                "name": task_name, "passive": False, "was_auto_created": False})
            execution = self._state.new_execution(task, {"status": status, **fields},
                                                  user="exampleuser")
            return copy.deepcopy(execution)

    def mark_stopped(self, execution_uuid: str, user: str = "exampleuser") -> None:
        """Stop an execution like the dashboard does (PATCH status STOPPING): the stored
        status becomes STOPPING, `killed_by`/`kill_started_at` are set, and the wrapper's next
        RUNNING heartbeat makes it STOPPED and gets 409."""
        with self._lock:
            execution = self._state.executions[execution_uuid]
            now = now_iso()
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
            self._state.executions[execution_uuid]["status"] = status
            self._state.executions[execution_uuid]["updated_at"] = now_iso()
            self._changed.notify_all()

    # ---- request handling (called by the handler threads) ------------------------------

    def _decide(self, incoming: Incoming) -> Decision:
        """Check, choose the behaviour, apply state changes and record: all under the lock so
        that a recorded request always comes with its consequences."""
        with self._lock:
            problems = check(incoming)
            behaviour = self._rules.next_behaviour(incoming.method, incoming.path)
            hang = None if self._closing.is_set() else self._hang_release
            decision, execution_uuid = decide(
                behaviour, incoming.method, lambda: self._safe_answer(incoming, problems), hang)
            if execution_uuid is None:
                execution_uuid = self._state.execution_of_path(incoming.path)
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

    def _safe_answer(self, incoming: Incoming, problems: Problems) -> tuple[
            Reply, str | None]:
        """The server's answer, but a bug of the fake (e.g. a wrongly typed field let through
        with reject_violations=False) becomes a 500 and a violation instead of a dropped
        request."""
        try:
            return answer(self._state, self._keys, incoming, problems, self.reject_violations)
        except Exception as e:
            problems.add(None, f"the fake server failed: {type(e).__name__}: {e}")
            return Reply.of(500, {"error_class": type(e).__name__,
                                  "error_message": str(e)}), None
