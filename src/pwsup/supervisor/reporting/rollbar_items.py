"""What a Rollbar item holds, and what it never holds: built in the caller's thread.

What it sends
    One Rollbar item per report, upstream's (cloudreactor-procwrapper 6.0.2) so existing
    Rollbar rules keep matching: `environment` (the deployment, or "Unknown"), a `message`
    body holding the text, the Task (uuid, name, version number/text/signature), the Task
    Execution uuid, the task instance metadata, pwsup's version and the caller's `data`;
    `level` "error", `timestamp`, `code_version` (the version signature), `context` "pwsup"
    and `server.host`.

What it never sends (unlike upstream, which posted whole request bodies)
    - `input_value`, `output_value`, `debug_log_tail` and `error_log_tail` are removed at any
      depth of `data`, including inside request/response bodies given as JSON text, unless
      the builder was made with `include_values=True`;
    - every string (keys too) goes through `Log.scrub`, which replaces the API key, the
      Rollbar token and resolved secret values with `***`. The API key and the token are
      replaced even when redaction is off (`--log-secrets` is about the local log only);
    - strings longer than `MAX_STRING_CHARS` are cut, and non-JSON values become text.

Building is pure computation (no I/O), so reporting never makes its caller wait.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pwsup._version import __version__
from pwsup.util.text import TRUNCATED

TYPE_CHECKING = False  # as in log.py: importing typing costs start-up time
if TYPE_CHECKING:
    import re
    from collections.abc import Callable
    from typing import Any

    from pwsup.config.params import Params
    from pwsup.util.log import Log

CONTEXT = "pwsup"
VALUE_KEYS = frozenset({"input_value", "output_value", "debug_log_tail", "error_log_tail"})
"""Keys removed from `data` at any depth unless values are explicitly allowed."""
MAX_STRING_CHARS = 10_000
"""Longer strings are cut: Rollbar rejects large items, and a report needs no more."""
MAX_DEPTH = 32
"""Deeper structures are replaced by a marker (a report needs no more, and no recursion)."""
MESSAGE_EXCERPT_CHARS = 120
REMOVED = "...[removed: the rest held input/output values or log tails]"
REDACTED = "***"


class Item:
    """One encoded item, and the excerpt of its message that log lines name it by."""

    __slots__ = ("body", "summary")

    def __init__(self, body: bytes, summary: str) -> None:
        self.body = body
        self.summary = summary


class ItemBuilder:
    """Turns a message and its data into an encoded, scrubbed Rollbar item.

    `execution_uuid_getter` is called for each item for the current Task Execution UUID
    (None before the server assigned one). `clock` gives the items' timestamps, `hostname`
    the `server.host` (default: this host's name)."""

    def __init__(self, params: Params, log: Log, *,
                 execution_uuid_getter: Callable[[], str | None], include_values: bool,
                 clock: Callable[[], float], hostname: str | None) -> None:
        self._log = log
        self._execution_uuid_getter = execution_uuid_getter
        self._include_values = include_values
        self._clock = clock
        self._hostname = hostname
        self._always_hidden = sorted(
            {s for s in (params.api_key, params.rollbar_access_token) if s}, key=len,
            reverse=True)
        self._environment = params.deployment or "Unknown"
        self._code_version = params.task_version_signature
        self._task = {
            "uuid": params.task_uuid,
            "name": params.task_name,
            "version_number": params.task_version_number,
            "version_text": params.task_version_text,
            "version_signature": params.task_version_signature,
        }
        self._task_instance_metadata = params.task_instance_metadata

    def build(self, message: str, data: Mapping[str, Any] | None) -> Item:
        import json

        body: dict[str, Any] = {
            "message": {
                "body": self._scrub(self._strip_json_text(str(message), 0)),
                "task": self._clean(self._task, 0),
                "task_execution": {"uuid": self._execution_uuid()},
                "task_instance_metadata": self._clean(self._task_instance_metadata, 0),
                "wrapper_version": __version__,
                "data": None if data is None else self._clean(data, 0),
            },
        }
        payload = {
            "data": {
                "environment": self._scrub(self._environment),
                "body": body,
                "level": "error",
                "timestamp": self._clock(),
                "code_version": self._clean(self._code_version, 0),
                "context": CONTEXT,
                "server": {"host": self._host()},
            },
        }
        encoded = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        summary = body["message"]["body"]
        if len(summary) > MESSAGE_EXCERPT_CHARS:
            summary = summary[:MESSAGE_EXCERPT_CHARS] + TRUNCATED
        return Item(encoded, summary)

    def _execution_uuid(self) -> str | None:
        try:
            return self._execution_uuid_getter()
        except Exception:
            return None  # the item is worth more than the uuid

    def _host(self) -> str | None:
        if self._hostname is None:
            import socket

            self._hostname = socket.gethostname() or None
        return self._hostname

    def _scrub(self, text: str) -> str:
        text = self._log.scrub(text)
        for secret in self._always_hidden:
            text = text.replace(secret, REDACTED)
        if len(text) > MAX_STRING_CHARS:
            text = text[:MAX_STRING_CHARS] + TRUNCATED
        return text

    def _clean(self, value: object, depth: int) -> Any:
        """A JSON-ready copy of `value`: value keys removed, strings scrubbed and cut."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return self._scrub(self._strip_json_text(value, depth))
        if depth >= MAX_DEPTH:
            return "[too deep]"
        if isinstance(value, Mapping):
            return {self._scrub(str(k)): self._clean(v, depth + 1) for k, v in value.items()
                    if self._include_values or k not in VALUE_KEYS}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(v, depth + 1) for v in value]
        if isinstance(value, bytes | bytearray):
            return self._clean(bytes(value).decode("utf-8", "replace"), depth)
        return self._scrub(repr(value))

    def _strip_json_text(self, text: str, depth: int) -> str:
        """Remove value keys from text that holds some: a request or response body given as
        JSON text, or a message quoting one."""
        if self._include_values:
            return text
        found = _value_key_pattern().search(text)
        if found is None:
            return text
        import json

        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict | list):
            # Not JSON (a message quoting a body, or a cut-off body): keep what comes before.
            return text[:found.start()] + REMOVED
        return json.dumps(self._clean_raw(parsed, depth), ensure_ascii=False, default=str)

    def _clean_raw(self, value: object, depth: int) -> object:
        """Remove value keys from parsed JSON (scrubbing happens on the re-encoded text)."""
        if depth >= MAX_DEPTH:
            return "[too deep]"
        if isinstance(value, dict):
            return {k: self._clean_raw(v, depth + 1) for k, v in value.items()
                    if k not in VALUE_KEYS}
        if isinstance(value, list):
            return [self._clean_raw(v, depth + 1) for v in value]
        if isinstance(value, str):
            return self._strip_json_text(value, depth + 1)
        return value


_VALUE_KEY_PATTERN: re.Pattern[str] | None = None


def _value_key_pattern() -> re.Pattern[str]:
    """A quoted value key, as in JSON text or a Python repr."""
    global _VALUE_KEY_PATTERN
    if _VALUE_KEY_PATTERN is None:
        import re

        names = "|".join(sorted(VALUE_KEYS))
        _VALUE_KEY_PATTERN = re.compile(f"[\"'](?:{names})[\"']")
    return _VALUE_KEY_PATTERN
