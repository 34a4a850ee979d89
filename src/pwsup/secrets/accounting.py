"""Failures and secret values collected during one resolution.

proc_wrapper's worst secrets defect was silent: with fail-fast on, the first failure
stopped resolution and the partial environment was used to start the command anyway;
with it off, failed or unresolved variables were set to their raw location string (which
may hold a secret). Here every problem becomes a `Failure` the caller must look at, with
fail-fast the first one ends resolution (`StopResolution`), and nothing is ever set to a
location string.

The secret values are collected so the caller can redact them from every log line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pwsup.errors import PwsupError

logger = logging.getLogger("pwsup.secrets")


@dataclass(frozen=True)
class Failure:
    """A variable or configuration key (or top-level location) that could not be set.
    `reason` never contains a secret value."""

    name: str
    provider: str | None
    reason: str

    def __str__(self) -> str:
        via = f" ({self.provider})" if self.provider else ""
        return f"{self.name}{via}: {self.reason}"


class StopResolution(PwsupError):
    """Raised on the first failure when failing fast; caught by the resolver."""


class Accounting:
    def __init__(self, *, fail_fast: bool) -> None:
        self.fail_fast = fail_fast
        self.failures: list[Failure] = []
        self.secret_values: set[str] = set()

    def fail(self, name: str, provider: str | None, reason: str) -> None:
        failure = Failure(name, provider, reason)
        self.failures.append(failure)
        logger.debug("cannot resolve %s", failure)
        if self.fail_fast:
            raise StopResolution

    def add_secret(self, value: Any) -> None:
        """Remember every string (and number) in `value`, plus the JSON-escaped form of
        strings that JSON escapes (they reach logs inside TASK_CONFIG and projections)."""
        if isinstance(value, str):
            if value:
                self.secret_values.add(value)
                escaped = json.dumps(value)[1:-1]
                if escaped != value:
                    self.secret_values.add(escaped)
        elif isinstance(value, dict):
            for item in value.values():
                self.add_secret(item)
        elif isinstance(value, list):
            for item in value:
                self.add_secret(item)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.secret_values.add(str(value))
