"""Top-level fetching: `--env` and `--config` locations, each a whole dictionary, merged in
the order given (later locations win, per the merge strategy).

A location that fails, or does not hold a dictionary, is a failure named by its position
("env location 2"), not by its text (which may hold a secret). Blank entries are skipped,
as proc_wrapper did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pwsup.secrets.accounting import Accounting
from pwsup.secrets.errors import FormatError, SecretsError
from pwsup.secrets.locations import parse_location
from pwsup.secrets.merge import merge
from pwsup.secrets.values import ValueSource


def fetch_and_merge(locations: Sequence[str], into: dict[str, Any], *, kind: str,
                    default_format: str, source: ValueSource, strategy: str,
                    accounting: Accounting) -> dict[str, Any]:
    """Merge every location's dictionary into `into` (mutated and returned)."""
    for index, text in enumerate(locations, 1):
        if not text.strip():
            continue
        provider: str | None = None
        try:
            location = parse_location(text.strip(), top_level=True)
            provider = location.provider
            value = source.evaluate(location, default_format=default_format)
            if not isinstance(value, dict):
                raise FormatError("the data is not a dictionary")
            accounting.add_secret(value)
            merge(into, value, strategy)
        except SecretsError as error:
            accounting.fail(f"{kind} location {index}", provider, str(error))
    return into
