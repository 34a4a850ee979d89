"""A fake CloudReactor API server, served over real HTTP on 127.0.0.1, for pwsup's tests.

Why a fake and not mocks: pwsup's reporter talks HTTP through `requests` with timeouts,
retries and keep-alive. Only a real socket exercises all of that — connection resets, hung
reads, slow bodies and `Retry-After` — so the fake is a `ThreadingHTTPServer` on an ephemeral
port, run in a daemon thread of the test process.

It plays three roles, each in its own module:

1. **The server** (`state`, `routes`). Tasks and Task Executions live in memory and follow
   the rules of the real server (`CloudReactor/task_manager`): creation with task lookup or
   auto-creation, the concurrency check (409 with an empty body), the status-transition
   rules of PATCH (409 with the execution JSON after a manual stop), authentication with
   access levels, and the server's error-body shapes (`replies`).
2. **The protocol checker** (`checks`, with the field tables of `protocol`). Every request
   is checked against what the wrapper must send: headers, a JSON object body, the type of
   every known field. Problems go to `api.violations` and the request is answered 400, so a
   test only needs `assert api.violations == []` to know pwsup spoke the protocol.
3. **The fault injector** (`faults`). Behaviours scripted per (method, path pattern)
   replace the normal answer: a given status, a hang until released, a TCP reset, a slow
   body, malformed JSON.

`server` ties them together behind `FakeCloudReactor`, and `handler` reads requests and
writes the decided answers. Every request is recorded (`api.requests`) once the fake has
decided how to answer it and has applied any change of state, so a test that waits for a
request (`api.wait_for`) can inspect `api.executions` right away without racing the handler
thread.

Usage::

    with FakeCloudReactor() as api:
        env["PROC_WRAPPER_API_BASE_URL"] = api.base_url
        env["PROC_WRAPPER_API_KEY"] = api.api_key
        api.script("PATCH", TASK_EXECUTION_PATH, Respond(503), Reset())
        ...run pwsup...
        assert api.violations == []
"""

from __future__ import annotations

from .faults import DEFAULT, Behaviour, Hang, Malformed, Passthrough, Reset, Respond, Slow
from .protocol import (
    ACCESS_LEVELS,
    DEFAULT_API_KEY,
    STATUSES,
    STOP_REASONS,
    TASK_EXECUTION_PATH,
    TASK_EXECUTIONS_PATH,
)
from .records import ApiKey, RecordedRequest
from .replies import default_body
from .server import FakeCloudReactor

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
