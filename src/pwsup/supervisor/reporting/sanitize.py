"""Status values made fit for the server before any request carries them.

Status values come from the command (UDP datagrams, or the function in embedded mode), so
they are whatever a program chose to send. The server refuses a whole update with a 400
when one field does not fit its columns: a text longer than the field, an integer beyond
64 bits, a NUL character (PostgreSQL text cannot hold one), a lone surrogate (not
encodable as UTF-8), NaN or infinity (not JSON at all). One bad value would then cost the
heartbeat and every status value riding with it. So each value is fixed where it can be
(text cut, NUL removed, surrogates replaced) and dropped where it cannot (numbers); each
kind of problem is warned about once per run, not once per datagram.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

LAST_STATUS_MESSAGE_MAX = 2000
"""Characters of `last_status_message` kept: the server's column holds 2,000."""
METADATA_TEXT_MAX = 2000
"""Characters kept of one text inside `other_runtime_metadata` (a key or a value)."""
METADATA_MAX_CHARS = 50_000
"""`other_runtime_metadata` larger than this as JSON is dropped whole: the server merges it
into the execution's stored value on every update, so it must stay small."""
METADATA_MAX_DEPTH = 10
"""Nesting levels kept in `other_runtime_metadata`; deeper values are dropped."""
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
"""The server stores integers in 64-bit columns."""
STATUS_KEYS = frozenset({"success_count", "error_count", "skipped_count", "expected_count",
                         "last_status_message", "other_runtime_metadata",
                         "last_app_heartbeat_at"})
"""The fields status values may set (the others a datagram names are refused earlier)."""

_PROBLEMS = {
    "float": "a number that is NaN or infinite was dropped",
    "int": "an integer beyond 64 bits was dropped",
    "long": "a text over the server's length limit was cut",
    "surrogate": "a text with a lone surrogate (not UTF-8) had it replaced",
    "nul": "a text with NUL characters had them removed",
    "deep": f"values nested deeper than {METADATA_MAX_DEPTH} levels were dropped",
    "big": f"other_runtime_metadata over {METADATA_MAX_CHARS} characters was dropped",
    "time": "last_app_heartbeat_at that is not an ISO 8601 time was dropped",
    "type": "a value that is not JSON data was dropped",
}


class Sanitizer:
    """Fixes or drops status values; warns once per kind of problem for the whole run."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.seen: set[str] = set()

    def fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The status fields as they may be sent (a field whose value cannot be is gone)."""
        out: dict[str, Any] = {}
        for key, value in fields.items():
            if value is None:
                out[key] = None
            elif key == "last_status_message":
                out[key] = self.text(str(value), LAST_STATUS_MESSAGE_MAX)
            elif key == "last_app_heartbeat_at":
                stamp = self._time(str(value))
                if stamp is not None:
                    out[key] = stamp
            elif key == "other_runtime_metadata":
                metadata = self._metadata(value)
                if metadata is not None:
                    out[key] = metadata
            else:
                number = self._value(value, 0)
                if number is not _DROP:
                    out[key] = number
        return out

    def text(self, text: str, limit: int) -> str:
        """`text` without NUL or lone surrogates, at most `limit` characters."""
        if "\0" in text:
            self._note("nul")
            text = text.replace("\0", "")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self._note("surrogate")
            text = text.encode("utf-8", "replace").decode("utf-8")
        if len(text) > limit:
            self._note("long")
            text = text[:limit]
        return text

    def _note(self, kind: str) -> None:
        if kind not in self.seen:
            self.seen.add(kind)
            self.warn(f"status update fixed before sending: {_PROBLEMS[kind]} "
                      "(warned once per run)")

    def _time(self, text: str) -> str | None:
        """An ISO 8601 time; one without a zone is UTC, as the server reads it."""
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            self._note("time")
            return None
        return text if stamp.tzinfo is not None else text + "+00:00"

    def _metadata(self, value: object) -> dict[str, Any] | None:
        cleaned = self._value(value, 0)
        if not isinstance(cleaned, dict):
            return None
        if len(json.dumps(cleaned)) > METADATA_MAX_CHARS:
            self._note("big")
            return None
        return cleaned

    def _value(self, value: object, depth: int) -> object:
        """A JSON value made sendable, or _DROP."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if INT64_MIN <= value <= INT64_MAX:
                return value
            self._note("int")
            return _DROP
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            self._note("float")
            return _DROP
        if isinstance(value, str):
            return self.text(value, METADATA_TEXT_MAX)
        if isinstance(value, (dict, list)):
            if depth >= METADATA_MAX_DEPTH:
                self._note("deep")
                return _DROP
            return self._container(value, depth + 1)
        self._note("type")
        return _DROP

    def _container(self, value: dict[Any, Any] | list[Any], depth: int) -> object:
        if isinstance(value, list):
            return [v for v in (self._value(item, depth) for item in value) if v is not _DROP]
        out: dict[str, Any] = {}
        for key, item in value.items():
            cleaned = self._value(item, depth)
            if cleaned is not _DROP:
                out[self.text(str(key), METADATA_TEXT_MAX)] = cleaned
        return out


_DROP = object()
"""A value that cannot be sent (not None: null is a value the server accepts)."""


def without_status(body: dict[str, Any]) -> dict[str, Any]:
    """`body` without the fields status values set: what is sent again after the server
    refused a body that carried them."""
    return {k: v for k, v in body.items() if k not in STATUS_KEYS}
