"""Environment projection: the working environment (which may hold lists, dictionaries,
numbers from JSON/YAML sources) flattened to the strings a process environment holds.

The rules are proc_wrapper's documented ones, which commands already depend on: booleans
as TRUE/FALSE, None as the empty string, lists and dictionaries as JSON (default
separators, so `[1, 2]`), anything else through `str()`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def project_value(value: Any) -> str:
    """One value as an environment string."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def project(environment: Mapping[Any, Any]) -> dict[str, str]:
    """Every variable as a string (keys too: YAML allows numbers as keys)."""
    return {str(name): project_value(value) for name, value in environment.items()}
