"""What the test fakes share: serving over real HTTP on 127.0.0.1, and closing cleanly.

`ServedFake` is the lifecycle of a fake server (fake_cloudreactor, fake_rollbar): a
ThreadingHTTPServer on an ephemeral port in a daemon thread, whose handler threads and open
connections are tracked, so that `close()` releases hung requests, cuts idle keep-alive
connections, closes the listening socket and joins every thread — a closed fake leaves no
thread and no ResourceWarning behind. A subclass supplies `handler_class` and `name`, and
the state it guards with `self._lock` / `self._changed`.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

_Self = TypeVar("_Self", bound="ServedFake")


class TrackedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1:0 whose handler threads the fake tracks and joins."""

    daemon_threads = True

    def __init__(self, fake: ServedFake, handler: type[BaseHTTPRequestHandler]) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address),
            name=f"{self.fake.name}-handler:{self.server_address[1]}", daemon=True)
        self.fake._handler_started(thread)
        thread.start()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with getfqdn(), which can stall on
        # DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])


class TrackedHandler(BaseHTTPRequestHandler):
    """Registers its connection with the fake, so close() can cut it; logs nothing."""

    protocol_version = "HTTP/1.1"
    server: TrackedServer
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.fake._connection_opened(self.connection)

    def finish(self) -> None:
        self.server.fake._connection_closing(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """No stderr access log: pytest shows failures well enough."""


class ServedFake:
    """Start/close and connection bookkeeping of a fake server (see the module docstring)."""

    name: ClassVar[str] = "fake"
    handler_class: ClassVar[type[BaseHTTPRequestHandler]]
    _lock: Any
    _changed: threading.Condition
    _requests: list[Any]

    def _init_serving(self) -> None:
        self._hang_release = threading.Event()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._httpd: TrackedServer | None = None
        self._thread: threading.Thread | None = None

    def start(self: _Self) -> _Self:
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._httpd = TrackedServer(self, self.handler_class)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
            name=f"{self.name}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: release hung requests, cut idle keep-alive connections, close the
        listening socket and join every thread. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None or self._closing.is_set():
            return
        with self._lock:
            # Under the lock: a handler deciding to hang either sees _closing or gets the
            # event set here.
            self._closing.set()
            self._hang_release.set()
            self._changed.notify_all()
        httpd.shutdown()
        with self._lock:
            # Handlers unregister under this lock before their socket is closed, so none of
            # these sockets can be closed (and its descriptor reused) while we shut it down.
            for sock in self._connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        thread.join()
        with self._lock:
            handlers = list(self._handler_threads)
        for handler in handlers:
            handler.join()

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("not started")
        return int(self._httpd.server_address[1])

    def release_hangs(self) -> None:
        """Let every request hanging now go (its connection is closed without an answer).
        Requests that hang later wait for the next call."""
        with self._lock:
            self._hang_release.set()
            self._hang_release = threading.Event()

    @property
    def requests(self) -> list[Any]:
        """A snapshot of every request recorded so far, in the order they were decided."""
        with self._lock:
            return list(self._requests)

    def _handler_started(self, thread: threading.Thread) -> None:
        with self._lock:
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
            self._handler_threads.append(thread)

    def _connection_opened(self, sock: socket.socket) -> None:
        with self._lock:
            if self._closing.is_set():
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._connections.add(sock)

    def _connection_closing(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)
