"""A minimal fake CloudReactor API on 127.0.0.1 (stdlib `ThreadingHTTPServer`, own thread).

Only what the benchmarks need (the test suite's fake is richer, but benchmarks do not import
test code):

    POST  /api/v1/task_executions/         201 {"uuid": ..., "task": {"uuid", "name"}}
    PATCH /api/v1/task_executions/<uuid>/  204

Paths may carry a prefix (`<prefix>/api/v1/...`, from a base URL with a path): it is
recorded as `Request.client`, so that two wrappers can share the server and still be told
apart. Either can be switched to *hang*: the request is read whole, then never answered (the
handler waits until `release()` or `close()`, then drops the connection without a word).
Every request is recorded (method, path, parsed JSON body, arrival time) once it is read,
before it is answered or hung.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

EXECUTIONS = "/api/v1/task_executions/"


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any]
    at_ns: int = field(default_factory=time.monotonic_ns)

    @property
    def client(self) -> str:
        """The path prefix before /api/v1/ (the base URL's path)."""
        return self.path.split(EXECUTIONS, 1)[0]

    @property
    def execution(self) -> str:
        """The execution uuid a PATCH is for ('' for a POST)."""
        rest = self.path.split("?", 1)[0].split(EXECUTIONS, 1)[-1]
        return rest.strip("/")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like the real server behind a load balancer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            value = json.loads(raw or b"{}")
        except ValueError:
            return {"_unparsed": raw.decode("utf-8", "replace")}
        return value if isinstance(value, dict) else {"_value": value}

    def _answer(self, code: int, payload: dict[str, Any] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(code)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _hang(self) -> None:
        self.server.api.hang_until_released()
        self.close_connection = True  # never answered: the connection is just dropped

    def do_POST(self) -> None:
        api = self.server.api
        request = api.record("POST", self.path, self._body())
        if api.hang_post:
            self._hang()
            return
        execution = str(uuid.uuid4())
        api.created.append(execution)
        name = str(request.body.get("task", {}).get("name", "bench")) \
            if isinstance(request.body.get("task"), dict) else "bench"
        self._answer(201, {"uuid": execution, "status": "RUNNING",
                           "task": {"uuid": api.task_uuid, "name": name}})

    def do_PATCH(self) -> None:
        api = self.server.api
        api.record("PATCH", self.path, self._body())
        if api.hang_patch:
            self._hang()
            return
        self._answer(204)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a wrapper stopped while its request was in
        flight) is no error of the server's; anything else is still printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeApi:
    """`with FakeApi() as api:` a server on 127.0.0.1:<ephemeral>; `api.base_url`."""

    def __init__(self) -> None:
        self.hang_post = False
        self.hang_patch = False
        self.task_uuid = str(uuid.uuid4())
        self.requests: list[Request] = []
        self.created: list[str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fake-api")
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, client: str) -> str:
        """A base URL whose requests are recorded with `Request.client == "/" + client`."""
        return f"{self.base_url}/{client}"

    def record(self, method: str, path: str, body: dict[str, Any]) -> Request:
        request = Request(method, path, body)
        with self._lock:
            self.requests.append(request)
        return request

    def hang_until_released(self) -> None:
        with self._lock:
            event = self._release
        event.wait()

    def scenario(self, *, hang_post: bool = False, hang_patch: bool = False) -> None:
        """Switch behaviour for the next run; requests hung so far are dropped."""
        self.release()
        self.hang_post, self.hang_patch = hang_post, hang_patch
        with self._lock:
            self.requests.clear()
            self.created.clear()

    def release(self) -> None:
        with self._lock:
            self._release.set()
            self._release = threading.Event()

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def of(self, client: str) -> list[Request]:
        """The requests recorded for `url_for(client)`."""
        return [r for r in self.snapshot() if r.client == "/" + client]

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def __enter__(self) -> FakeApi:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
