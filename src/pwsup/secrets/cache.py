"""The fetch cache: one fetch per (provider, address) until the entry goes stale.

Fetching is the expensive part (a network round trip to AWS, often billed), and a
single secret usually feeds many variables through `|JP:` expressions. The key is the
address without `!format` and transform, so `...:db|JP:$.user` and `...:db|JP:$.password`
share one fetch.

Entries go stale `config_ttl` seconds after they were fetched (never without a TTL); a
stale entry is fetched again on its next use, so a second resolution after the TTL
refreshes exactly what it uses. The clock is injected (monotonic by default: wall-clock
jumps must not expire or immortalise secrets). ENV and CONFIG are never cached: they read
the environment and configuration being built, which change during resolution. Parsed
values are memoised per format alongside the text, and handed out as deep copies because
callers merge into them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pwsup.secrets.providers import Fetched


@dataclass
class Entry:
    """One fetched document: its text, the provider's format hint, when it was fetched."""

    fetched: Fetched
    fetched_at: float
    _parsed: dict[str | None, Any] = field(default_factory=dict)

    def parsed(self, fmt: str | None, parse: Callable[[str, str | None], Any]) -> Any:
        """`parse(text, fmt)`, computed once per format; a private copy each time."""
        if fmt not in self._parsed:
            self._parsed[fmt] = parse(self.fetched.text, fmt)
        return copy.deepcopy(self._parsed[fmt])


class Cache:
    """Entries by (provider code, address)."""

    def __init__(self, ttl: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.ttl = ttl
        self.clock = clock or time.monotonic
        self._entries: dict[tuple[str, str], Entry] = {}

    def get(self, provider: str, address: str) -> Entry | None:
        """The fresh entry, or None if absent or stale."""
        entry = self._entries.get((provider, address))
        if entry is None or self.is_stale(entry):
            return None
        return entry

    def put(self, provider: str, address: str, fetched: Fetched) -> Entry:
        entry = Entry(fetched, self.clock())
        self._entries[(provider, address)] = entry
        return entry

    def is_stale(self, entry: Entry) -> bool:
        return self.ttl is not None and self.clock() - entry.fetched_at > self.ttl

    @property
    def size(self) -> int:
        """Entries held (fresh or stale). Not `__len__`: an empty cache must stay truthy."""
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
