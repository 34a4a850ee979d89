"""The server's own field validation of an execution body, beyond the protocol's types:
what its columns can hold. A body that breaks one is refused whole with a 400 naming the
field, as DRF's validators answer — a client must cope with that, not be checked for it,
so these are answers, not protocol violations.

- text fields: at most their column's length (`last_status_message`: 2,000), and no NUL
  character anywhere (DRF refuses "Null characters are not allowed.");
- integers: within the 64-bit columns;
- a lone surrogate anywhere: the real server fails storing it (PostgreSQL text is UTF-8);
  the fake refuses it as a validation error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

TEXT_LIMITS: Final[Mapping[str, int]] = {"last_status_message": 2000}
INT_FIELDS: Final = frozenset({
    "success_count", "error_count", "skipped_count", "expected_count", "failed_attempts",
    "timed_out_attempts", "exit_code"})
INT64_MAX: Final = 2 ** 63 - 1
INT64_MIN: Final = -(2 ** 63)


def field_errors(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the server's validators say of `body` (empty: it may be stored)."""
    errors: dict[str, list[str]] = {}
    for key, value in body.items():
        problem = _problem(key, value)
        if problem is not None:
            errors[key] = [problem]
    return errors


def _problem(key: str, value: object) -> str | None:
    limit = TEXT_LIMITS.get(key)
    if limit is not None and isinstance(value, str) and len(value) > limit:
        return f"Ensure this field has no more than {limit} characters."
    if key in INT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        if value > INT64_MAX:
            return f"Ensure this value is less than or equal to {INT64_MAX}."
        if value < INT64_MIN:
            return f"Ensure this value is greater than or equal to {INT64_MIN}."
    return _text_problem(value, 0)


def _text_problem(value: object, depth: int) -> str | None:
    """A NUL or a lone surrogate anywhere in `value`, keys included."""
    if depth > 200:
        return "Nested too deeply."
    if isinstance(value, str):
        if "\0" in value:
            return "Null characters are not allowed."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Lone surrogates cannot be stored."
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not (
            INT64_MIN <= value <= INT64_MAX):
        return "Integers beyond 64 bits cannot be stored."
    items: list[object] = []
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = list(value)
    for item in items:
        problem = _text_problem(item, depth + 1)
        if problem is not None:
            return problem
    return None
