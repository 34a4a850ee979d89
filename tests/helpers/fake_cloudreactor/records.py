"""The fake's view of a client: the API keys it accepts, a request as read from the socket,
and a request as recorded for the test, with the way it was answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .protocol import ACCESS_LEVELS


@dataclass(frozen=True)
class ApiKey:
    """A configured API key: access level (name from ACCESS_LEVELS or a number), whether it
    is enabled, the user it acts for, and an optional run-environment scope (tasks of other
    run environments are invisible to a scoped key, as on the server)."""

    level: int | str = "developer"
    enabled: bool = True
    user: str = "exampleuser"
    run_environment: str | None = None

    @property
    def level_value(self) -> int:
        if isinstance(self.level, int):
            return self.level
        return ACCESS_LEVELS[self.level.lower()]


def _header(headers: dict[str, str], name: str) -> str | None:
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


@dataclass(frozen=True)
class Incoming:
    """A request as read from the socket, before any decision."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    parse_problems: tuple[str, ...]
    timestamp: float

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, and how it was answered.

    `timestamp` is time.monotonic() when the request line arrived. `json` is the parsed body
    (None when there was no body or it did not parse). `response_status` is None for hangs and
    resets. `behaviour` names the scripted behaviour used (None: answered normally).
    `execution_uuid` is the execution the request was about: the PATCHed one, or the one a
    POST created.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    timestamp: float
    response_status: int | None
    behaviour: str | None
    execution_uuid: str | None
    violations: tuple[str, ...]

    def header(self, name: str) -> str | None:
        """A request header, by case-insensitive name."""
        return _header(self.headers, name)

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level key of the JSON body (`default` when the body is not an object)."""
        return self.json.get(key, default) if isinstance(self.json, dict) else default
