"""JSON values as the server reads and renders them: date-times, integers, merged objects."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TypeGuard


def now_iso() -> str:
    return render_datetime(datetime.now(timezone.utc))


def render_datetime(value: datetime) -> str:
    """Render like DRF: ISO-8601 in UTC, `Z` instead of `+00:00`."""
    text = value.astimezone(timezone.utc).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_datetime(value: str) -> datetime | None:
    """Parse an ISO-8601 date-time that has a 'T' and a time zone; None otherwise."""
    if "T" not in value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def deep_merge(into: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(into)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def is_int(value: object) -> TypeGuard[int]:
    """An int that is not a bool (JSON true must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)
