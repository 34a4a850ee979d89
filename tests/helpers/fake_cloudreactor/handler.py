"""HTTP plumbing: read each request completely, let the fake decide under its lock, then
carry out the decision — send the reply (at once or trickled), hang, or reset the
connection — with the lock released."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

# Relative: tests import the helpers both as `helpers.…` and `tests.helpers.…`, and each
# copy of this package must build on the `served` module of the same copy.
from ..served import TrackedHandler  # noqa: TID252
from .records import Incoming

if TYPE_CHECKING:
    from .replies import Reply
    from .server import FakeCloudReactor


class Handler(TrackedHandler):
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

    @property
    def _fake(self) -> FakeCloudReactor:
        return cast("FakeCloudReactor", self.server.fake)

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

    def _read(self) -> Incoming:
        """The whole request, with what made it unreadable as JSON."""
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
        return Incoming(
            method=self.command, path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=dict(self.headers.items()), body=body, json=parsed,
            parse_problems=tuple(problems), timestamp=timestamp)

    def _handle(self) -> None:
        fake = self._fake
        decision = fake._decide(self._read())
        if not fake.keep_alive:
            self.close_connection = True
        if decision.hang is not None:
            decision.hang.wait()
            self.close_connection = True
        elif decision.reset:
            self._reset()
        elif decision.reply is not None:
            self._send(decision.reply, decision.slow_seconds)

    def _send(self, reply: Reply, slow_seconds: float | None) -> None:
        closing = self._fake._closing
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
