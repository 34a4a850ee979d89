"""ENV: the value of another variable of the environment being resolved.

It reads the *working* environment (process environment plus fetched env files plus
what resolution has produced so far), so `A_FOR_..=ENV:B` sees a `B` that was itself
resolved, possibly in an earlier pass. A missing variable is unresolved, not broken: a
later pass may define it. Structured values (from a JSON/YAML env file) are handed on as
JSON with a JSON hint, so `|JP:` works on them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pwsup.secrets.errors import UnresolvedError
from pwsup.secrets.providers.base import Fetched


class EnvProvider:
    cacheable = False

    def __init__(self, environment: Callable[[], Mapping[str, Any]]) -> None:
        self._environment = environment

    def fetch(self, address: str) -> Fetched:
        environment = self._environment()
        if address not in environment:
            raise UnresolvedError("the environment variable the location names is not set")
        value = environment[address]
        if isinstance(value, str):
            return Fetched(value)
        return Fetched(json.dumps(value, default=str), "json")
