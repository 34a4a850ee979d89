"""Fault injection: the behaviours a test scripts in place of the normal answer, the rules
that pick one for a request, and the decision the handler thread carries out.

A behaviour is chosen and turned into a `Decision` under the fake's lock, together with any
change of state; the handler thread then performs it (sends, hangs, resets) with the lock
released, so one hung request never blocks the others.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final

from .replies import Reply, default_body


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

    def reply(self, method: str) -> Reply:
        body = default_body(self.status, method) if self.body is DEFAULT else self.body
        return Reply.of(self.status, body, self.headers)


@dataclass(frozen=True)
class Hang(Behaviour):
    """Read the whole request, then answer nothing until `api.release_hangs()` or shutdown;
    then close the connection without a response. Nothing changes on the server, as with a
    proxy that lost the request, unless `process=True`: then the request is applied first
    and only its answer never comes (a server that did its work and then stalled). Meant
    for the client's read timeout and the reporter's deadlines."""

    process: bool = False


@dataclass(frozen=True)
class Reset(Behaviour):
    """Read the request and close the socket with SO_LINGER 0: the client gets a TCP RST
    and no response (`requests` raises ConnectionError). Nothing changes on the server,
    unless `process=True`: then the request is applied first and only its answer is lost
    (the execution exists, but the client never learns its uuid)."""

    process: bool = False


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


class Rule:
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


class Rules:
    """The script queues (used up one behaviour per request) and the `always()` rules
    (kept until cleared). The caller holds the fake's lock."""

    def __init__(self) -> None:
        self.scripts: list[Rule] = []
        self.always: list[Rule] = []

    def next_behaviour(self, method: str, path: str) -> Behaviour | None:
        """The oldest script queue with behaviours left wins, then the newest `always()`."""
        for rule in self.scripts:
            if rule.behaviours and rule.matches(method, path):
                return rule.behaviours.pop(0)
        for rule in self.always:
            if rule.matches(method, path):
                return rule.behaviours[0]
        return None

    @property
    def pending(self) -> int:
        return sum(len(rule.behaviours) for rule in self.scripts)


@dataclass(frozen=True)
class Decision:
    """What the handler thread does once the lock is released."""

    reply: Reply | None = None
    hang: threading.Event | None = None
    reset: bool = False
    slow_seconds: float | None = None


Answer = Callable[[], tuple[Reply, str | None]]
"""Processes the request as the real server would (state change included) and returns its
reply and the execution it was about."""


def decide(behaviour: Behaviour | None, method: str, answer: Answer,
           hang: threading.Event | None) -> tuple[Decision, str | None]:
    """Turn the behaviour chosen for a request into a decision, calling `answer` only when
    the behaviour lets the request reach the server. `hang` is the event a hung request
    waits on, None once the fake is closing (a hang then becomes a reset at once).
    Returns the decision and the execution the request was about, if the server said."""
    if behaviour is None or isinstance(behaviour, Passthrough):
        reply, execution_uuid = answer()
        return Decision(reply=reply), execution_uuid
    if isinstance(behaviour, Respond):
        return Decision(reply=behaviour.reply(method)), None
    if isinstance(behaviour, Hang):
        execution_uuid = answer()[1] if behaviour.process else None
        return (Decision(reset=True) if hang is None else Decision(hang=hang)), execution_uuid
    if isinstance(behaviour, Reset):
        return Decision(reset=True), (answer()[1] if behaviour.process else None)
    if isinstance(behaviour, Slow):
        if behaviour.response is None:
            reply, execution_uuid = answer()
        else:
            reply, execution_uuid = behaviour.response.reply(method), None
        return Decision(reply=reply, slow_seconds=behaviour.seconds), execution_uuid
    if isinstance(behaviour, Malformed):
        execution_uuid = answer()[1] if behaviour.process else None
        status = behaviour.status or (201 if method == "POST" else 200)
        return Decision(reply=Reply(
            status, behaviour.body, {"Content-Type": "application/json"})), execution_uuid
    raise TypeError(f"unknown behaviour {behaviour!r}")
