"""What every provider offers: fetch an address, get text and perhaps a format hint.

Providers only fetch. Parsing, JSONPath, caching and error accounting are done once, in
`values` and `cache`, so a provider is a few lines around one API call and easy to fake
in tests. A provider raises `FetchError` (broken: AWS error, missing file) or
`UnresolvedError` (absent: an ENV variable that is not set); either message must stay
free of secret values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Fetched:
    """Raw data from a provider. `format` is what the source says the data is (an S3
    object's Content-Type, an SSM StringList), used when the location names none."""

    text: str
    format: str | None = None

    def __repr__(self) -> str:
        return f"Fetched(<{len(self.text)} characters>, format={self.format!r})"


class Provider(Protocol):
    """A source of secret data."""

    cacheable: bool
    """False for sources that change during resolution (ENV, CONFIG)."""

    def fetch(self, address: str) -> Fetched:
        """The data at `address` (the location without provider prefix and format)."""
        ...
