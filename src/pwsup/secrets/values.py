"""From a parsed location to its value: fetch (through the cache), parse, extract.

This is the one place that combines providers, the cache, formats and JSONPath, so every
location (top-level or resolvable, env or config) follows exactly the same rules:

1. fetch `address` from the provider, or take the fresh cache entry;
2. choose the format (`formats.choose`); the address guess is only made for providers
   whose addresses are names or paths (files, S3 keys, secret and parameter names): a
   PLAIN address is the data itself and ENV/CONFIG addresses are variable names or
   expressions, so an "extension" in them means nothing;
3. parse; a document that parses to null keeps its text (`PLAIN:null!json` is the
   string "null", as with proc_wrapper);
4. apply `|JP:`; without a format the text is read as JSON for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pwsup.secrets import formats, jsonpath
from pwsup.secrets import locations as loc
from pwsup.secrets.cache import Cache, Entry
from pwsup.secrets.errors import FetchError, SecretsError
from pwsup.secrets.locations import Location
from pwsup.secrets.providers.base import Provider

logger = logging.getLogger("pwsup.secrets")

GUESSABLE = frozenset({loc.FILE, loc.AWS_S3, loc.AWS_SM, loc.AWS_SSM, loc.AWS_APP_CONFIG})


class ValueSource:
    """Evaluates locations for one resolver."""

    def __init__(self, providers: Mapping[str, Provider], cache: Cache) -> None:
        self._providers = providers
        self._cache = cache
        self.fetch_count = 0
        """Provider fetches of cacheable data (cache misses), for logs and tests."""

    def evaluate(self, location: Location, *, default_format: str | None = None) -> Any:
        """The value of `location`. Raises SecretsError subclasses (safe messages) only:
        anything else a provider or parser raises (a bug, a surprising response) becomes
        a FetchError naming the exception type, since its message may quote data."""
        try:
            return self._evaluate(location, default_format)
        except SecretsError:
            raise
        except Exception as error:
            logger.debug("unexpected %s from the %s provider", type(error).__name__,
                         location.provider)
            raise FetchError(f"unexpected error: {type(error).__name__}") from None

    def _evaluate(self, location: Location, default_format: str | None) -> Any:
        entry = self._entry(location)
        guessed = (formats.guess_from_address(location.address)
                   if location.provider in GUESSABLE else None)
        fmt = formats.choose(location.format, entry.fetched.format, guessed, default_format)
        if location.jsonpath is None:
            return entry.parsed(fmt, _parse)
        data = entry.parsed(fmt or formats.JSON, _parse)
        return jsonpath.query(data, location.jsonpath)

    def _entry(self, location: Location) -> Entry:
        provider = self._providers.get(location.provider)
        if provider is None:
            raise FetchError(f"the {location.provider} provider is not available")
        if not provider.cacheable:
            return Entry(provider.fetch(location.address), 0.0)
        entry = self._cache.get(location.provider, location.address)
        if entry is None:
            self.fetch_count += 1
            logger.debug("fetching from %s", location.provider)
            entry = self._cache.put(location.provider, location.address,
                                    provider.fetch(location.address))
        return entry


def _parse(text: str, fmt: str | None) -> Any:
    if fmt is None:
        return text
    value = formats.parse(text, fmt)
    return text if value is None else value
