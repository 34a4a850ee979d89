"""A fake Rollbar item endpoint, served over real HTTP on 127.0.0.1, for pwsup's tests.

Like the fake API server (fake_cloudreactor/), it is a `ThreadingHTTPServer` on an
ephemeral port in a daemon thread, so timeouts, retries, keep-alive, hung reads and
connection resets all go through real sockets.

It answers `POST /api/1/item/` as Rollbar does: 200 with `{"err": 0, "result": {"id": null,
"uuid": ...}}` for an item whose `X-Rollbar-Access-Token` header is the configured token and
whose body is a JSON object with a `data` object; 403 with `{"err": 1, "message": ...}` for a
missing or wrong token; 400 for a malformed body; 404 for other paths.

Every request is recorded (`rollbar.requests`, raw bytes included, so a test can check that
something is absent from what went over the wire); accepted items also go to
`rollbar.items`. Records are added once the answer is decided and before it is sent (before
hanging for a `Hang`), and waiting for them blocks on a Condition — nothing polls.

Faults are scripted for the next requests in order (`script(Respond(503), Hang(), Reset())`)
or for every request (`always(Hang())`): a status with a Rollbar-style error body, a hang
until `release_hangs()` or `close()`, or a TCP reset.

Usage::

    with FakeRollbar() as rollbar:
        params = Params(rollbar_access_token=rollbar.access_token,
                        rollbar_endpoint=rollbar.endpoint)
        rollbar.script(Respond(503))
        ...
        items = rollbar.wait_for_items(1, timeout=5)
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import uuid as uuid_module
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from .served import ServedFake, TrackedHandler

__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "ITEM_PATH",
    "Behaviour",
    "FakeRollbar",
    "Hang",
    "RecordedRequest",
    "Reset",
    "Respond",
]

ITEM_PATH: Final = "/api/1/item/"
DEFAULT_ACCESS_TOKEN: Final = "fake-rollbar-token-0123456789abcdef"
"""A post_server_item token as long as Rollbar's (32+ characters)."""


# ---- scripted behaviours --------------------------------------------------------------

class Behaviour:
    """How the fake answers one request instead of its normal answer."""


@dataclass(frozen=True)
class Respond(Behaviour):
    """Answer `status` with a Rollbar-style body (`{"err": 1, "message": ...}` unless given)."""

    status: int
    body: Any = None


@dataclass(frozen=True)
class Hang(Behaviour):
    """Read the request, then answer nothing until `release_hangs()` or `close()`, and close
    the connection without a response."""


@dataclass(frozen=True)
class Reset(Behaviour):
    """Read the request and close the socket with SO_LINGER 0: the client gets a TCP RST."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received. `status` is the answer (None for a hang or a reset)."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any
    status: int | None
    timestamp: float
    """time.monotonic() when the request was read."""

    @property
    def item(self) -> dict[str, Any]:
        """The item's `data` object."""
        data = self.json["data"]
        assert isinstance(data, dict)
        return data

    @property
    def message(self) -> dict[str, Any]:
        """The item's `body.message` object."""
        message = self.item["body"]["message"]
        assert isinstance(message, dict)
        return message


@dataclass(frozen=True)
class _Decision:
    status: int | None = None
    body: bytes = b""
    hang: threading.Event | None = None
    reset: bool = False


# ---- the fake ---------------------------------------------------------------------------

class FakeRollbar(ServedFake):
    """A Rollbar item endpoint on 127.0.0.1 (see the module docstring)."""

    name = "fake-rollbar"

    def __init__(self, access_token: str = DEFAULT_ACCESS_TOKEN) -> None:
        self.access_token = access_token
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._scripted: deque[Behaviour] = deque()
        self._always: Behaviour | None = None
        self._init_serving()

    # ---- lifecycle ------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}{ITEM_PATH}"

    # ---- scripting ------------------------------------------------------------------

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with these behaviours, one each, in order."""
        with self._lock:
            self._scripted.extend(behaviours)

    def always(self, behaviour: Behaviour | None) -> None:
        """Answer every request (after the scripted ones) this way; None: normally."""
        with self._lock:
            self._always = behaviour

    def stop_faults(self) -> None:
        """Forget scripted behaviours, answer normally from now on and release hung requests
        (atomically: a request arriving meanwhile is either released or answered)."""
        with self._lock:
            self._scripted.clear()
            self._always = None
            self._hang_release.set()
            self._hang_release = threading.Event()

    # ---- inspection -----------------------------------------------------------------

    @property
    def items(self) -> list[RecordedRequest]:
        """The accepted items (answered 200)."""
        with self._lock:
            return [r for r in self._requests if r.status == 200]

    def wait_for_requests(self, count: int, timeout: float) -> list[RecordedRequest]:
        """Block until `count` requests were received; fail the test after `timeout`."""
        return self._wait(lambda: self._requests, count, timeout, "requests")

    def wait_for_items(self, count: int, timeout: float) -> list[RecordedRequest]:
        """Block until `count` items were accepted; fail the test after `timeout`."""
        return self._wait(lambda: [r for r in self._requests if r.status == 200], count,
                          timeout, "accepted items")

    def _wait(self, select: Any, count: int, timeout: float, what: str
              ) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found: list[RecordedRequest] = list(select())
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closing.is_set():
                    raise AssertionError(
                        f"expected {count} {what} within {timeout} s, got {len(found)}")
                self._changed.wait(remaining)

    # ---- deciding (handler threads) -------------------------------------------------

    def _decide(self, method: str, path: str, headers: dict[str, str], raw: bytes
                ) -> _Decision:
        parsed: Any = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw.decode("utf-8"))
        with self._lock:
            behaviour = self._scripted.popleft() if self._scripted else self._always
            decision = self._answer(behaviour, method, path, headers, parsed)
            if decision.hang is not None and self._closing.is_set():
                decision = _Decision(reset=True)
            self._requests.append(RecordedRequest(
                method=method, path=path, headers=headers, raw=raw, json=parsed,
                status=decision.status, timestamp=time.monotonic()))
            self._changed.notify_all()
        return decision

    def _answer(self, behaviour: Behaviour | None, method: str, path: str,
                headers: dict[str, str], parsed: Any) -> _Decision:
        if isinstance(behaviour, Hang):
            return _Decision(hang=self._hang_release)
        if isinstance(behaviour, Reset):
            return _Decision(reset=True)
        if isinstance(behaviour, Respond):
            body = behaviour.body
            if body is None:
                body = {"err": 1, "message": f"scripted failure {behaviour.status}"}
            return _error(behaviour.status, body)
        if path != ITEM_PATH:
            return _error(404, {"err": 1, "message": "Not found"})
        if method != "POST":
            return _error(405, {"err": 1, "message": "Method not allowed"})
        token = {k.lower(): v for k, v in headers.items()}.get("x-rollbar-access-token")
        if token != self.access_token:
            message = ("access token required" if not token
                       else "invalid access token")
            return _error(403, {"err": 1, "message": message})
        if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), dict):
            return _error(400, {"err": 1, "message": "Invalid format. data is a required field"})
        result = {"err": 0, "result": {"id": None, "uuid": uuid_module.uuid4().hex}}
        return _Decision(status=200, body=json.dumps(result).encode())


def _error(status: int, body: Any) -> _Decision:
    return _Decision(status=status, body=json.dumps(body).encode())


class _Handler(TrackedHandler):
    server_version = "FakeRollbar/1.0"

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = self.headers.get("Content-Length")
        try:
            raw = self.rfile.read(int(length)) if length else b""
        except (ValueError, OSError):
            self.close_connection = True
            return
        fake = self.server.fake
        decision = fake._decide(self.command, self.path.split("?", 1)[0],
                                dict(self.headers.items()), raw)
        if decision.hang is not None:
            decision.hang.wait()
            self.close_connection = True
            return
        if decision.reset:
            self._reset()
            return
        assert decision.status is not None
        try:
            self.send_response(decision.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(decision.body)))
            self.end_headers()
            self.wfile.write(decision.body)
        except OSError:  # the client went away
            self.close_connection = True

    def _reset(self) -> None:
        """Close with SO_LINGER 0 so the kernel sends RST instead of FIN (the buffered
        reader goes first: the descriptor is only released once nothing refers to it)."""
        self.close_connection = True
        self.server.fake._connection_closing(self.connection)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.rfile.close()
        self.connection.close()


FakeRollbar.handler_class = _Handler
