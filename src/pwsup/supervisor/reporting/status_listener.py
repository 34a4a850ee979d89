"""The UDP status listener (in the reporter) and the parser of what it receives.

Wire format (proc_wrapper's): UTF-8 JSON objects, each ended by a newline; an object may be
split across datagrams, and a datagram may hold several. The parser fixes upstream's
defects: datagrams are read whole up to the configured maximum (no 4 KiB truncation that
corrupted the next message), an oversize or broken message is dropped on its own, and only
the status keys below are accepted — above all not `status` or `exit_code`, which any
local process could otherwise use to rewrite the reported outcome.

Nothing here raises on bad input: every problem is counted and reported through a
rate-limited warning.
"""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.config.params import Params
    from pwsup.util.log import Log

COUNT_KEYS = ("success_count", "error_count", "skipped_count", "expected_count")
ALLOWED_KEYS = frozenset({*COUNT_KEYS, "last_status_message", "other_runtime_metadata",
                          "last_app_heartbeat_at"})
WARNING_INTERVAL = 10.0
"""At most one warning about dropped status messages per this many seconds."""


def _valid(key: str, value: object) -> bool:
    if key in COUNT_KEYS:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if key == "other_runtime_metadata":
        return value is None or isinstance(value, dict)
    return value is None or isinstance(value, str)


class StatusParser:
    """Turns datagrams into accepted status fields; keeps the tail of a split message."""

    def __init__(self, max_bytes: int, warn: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.warn = warn
        self.clock = clock
        self._partial = b""
        self._dropped = 0
        self._last_warning = -WARNING_INTERVAL

    def feed(self, datagram: bytes) -> dict[str, Any]:
        """Accepted fields from one datagram (later values of a key win)."""
        accepted: dict[str, Any] = {}
        data = self._partial + datagram
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self.max_bytes:
            self._drop("it is longer than the maximum size")
            self._partial = b""
        for line in lines:
            if line.strip():
                accepted.update(self._message(line))
        return accepted

    def _message(self, line: bytes) -> dict[str, Any]:
        if len(line) > self.max_bytes:
            return self._drop("it is longer than the maximum size")
        try:
            value = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            return self._drop("it is not UTF-8")
        except ValueError:
            return self._drop("it is not JSON")
        except RecursionError:  # nested deeper than the parser can follow
            return self._drop("it is nested too deeply")
        if not isinstance(value, dict):
            return self._drop("it is not a JSON object")
        fields: dict[str, Any] = {}
        for key, item in value.items():
            if key not in ALLOWED_KEYS:
                self._drop(f"the key {key!r} may not be set by status updates")
            elif not _valid(key, item):
                self._drop(f"{key!r} has a value of the wrong type")
            else:
                fields[key] = item
        return fields

    def _drop(self, what: str) -> dict[str, Any]:
        self._dropped += 1
        now = self.clock()
        if now - self._last_warning >= WARNING_INTERVAL:
            self.warn(f"ignored part of a status update: {what} ({self._dropped} so far)")
            self._last_warning = now
        return {}


RECEIVE_BUFFER = 16 << 20
"""A burst of status updates is queued here while the reporter catches up: updates are
dropped by the kernel only once it is full, and those would be the newest values."""


def _large_receive_buffer(sock: socket.socket) -> None:
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER)  # beyond rmem_max (root)
            return
        except OSError:
            pass
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)  # capped by rmem_max


def open_listener(host: str, port: int, max_bytes: int) -> socket.socket:
    """A non-blocking UDP socket bound to host:port with room for whole datagrams."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _large_receive_buffer(sock)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listen(p: Params, log: Log) -> socket.socket | None:
    """The listener when status updates are enabled. A port that cannot be bound costs the
    run its status updates, not the run itself: that is logged, and None returned."""
    if not p.enable_status_update_listener:
        return None
    try:
        return open_listener(p.status_update_host, p.status_update_socket_port,
                             p.status_update_message_max_bytes)
    except OSError as e:
        log.warning(f"cannot listen for status updates on {p.status_update_host}:"
                    f"{p.status_update_socket_port} ({e.strerror}); the run goes on "
                    "without them")
        return None


MAX_DATAGRAM = 65536
"""Every datagram is read whole (UDP payloads are at most 65,507 bytes)."""


def receive_all(sock: socket.socket, parser: StatusParser) -> dict[str, Any]:
    """Read every queued datagram; return the fields they carry (latest value per key)."""
    fields: dict[str, Any] = {}
    while True:
        try:
            datagram = sock.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return fields
        except OSError:
            return fields
        fields.update(parser.feed(datagram))
