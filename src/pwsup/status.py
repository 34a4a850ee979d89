"""`StatusUpdater`: how a running task reports progress to pwsup (over local UDP).

Same signature as proc_wrapper's, so `from pwsup import StatusUpdater` (or the
compatibility import) is a drop-in replacement:

    from pwsup import StatusUpdater

    with StatusUpdater() as updater:
        for item in items:
            process(item)
            updater.send_update(success_count=1, last_status_message=f"did {item}")

It is a no-op unless pwsup is listening (PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER is
TRUE or 1), sends to PROC_WRAPPER_STATUS_UPDATE_HOST:PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT
(proc_wrapper always used 127.0.0.1), and never blocks or raises: a status update must not
be able to break the task that sends it.
"""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING, Any

from pwsup.ipc import STATUS_UPDATE_PORT

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

DEFAULT_PORT = STATUS_UPDATE_PORT
_COUNTS = ("success_count", "error_count", "skipped_count", "expected_count")
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
"""Built once: `json.dumps(..., default=str)` would build an encoder on every update."""


def _enabled(environ: Mapping[str, str]) -> bool:
    value = environ.get("PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER", "")
    return value.strip().lower() in ("true", "1", "yes")


def _port(environ: Mapping[str, str]) -> int:
    try:
        return int(environ.get("PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT", DEFAULT_PORT))
    except ValueError:
        return DEFAULT_PORT


class StatusUpdater:
    """Sends status updates (counts, a message, extra metadata) to pwsup."""

    def __init__(self, incremental_count_mode: bool = False,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.incremental_count_mode = incremental_count_mode
        self.enabled = _enabled(env)
        self.address = (env.get("PROC_WRAPPER_STATUS_UPDATE_HOST") or "127.0.0.1", _port(env))
        self.totals: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self._socket: socket.socket | None = None

    def send_update(
        self, success_count: int | None = None, error_count: int | None = None,
        skipped_count: int | None = None, expected_count: int | None = None,
        last_status_message: str | None = None, extra_props: Mapping[str, Any] | None = None,
    ) -> None:
        """Send one update. In incremental mode counts are added to running totals."""
        if not self.enabled:
            return
        message: dict[str, Any] = {}
        counts = (success_count, error_count, skipped_count, expected_count)
        for key, value in zip(_COUNTS, counts, strict=True):
            if value is None or (self.incremental_count_mode and value == 0):
                continue
            if self.incremental_count_mode:
                self.totals[key] += int(value)
                message[key] = self.totals[key]
            else:
                message[key] = int(value)
        if last_status_message:
            message["last_status_message"] = last_status_message
        if extra_props:
            message["other_runtime_metadata"] = dict(extra_props)
        if message:
            self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            data = (_ENCODER.encode(message) + "\n").encode("utf-8")
            if self._socket is None:
                self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(data, self.address)
        except (OSError, ValueError, TypeError):
            self.shutdown()  # dropped: the next update tries with a fresh socket

    def shutdown(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None

    def __enter__(self) -> StatusUpdater:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()
