"""The one exception type fetchers raise.

Fetchers are allowed to fail loudly (an unreachable endpoint, a malformed document): the
detection layer catches `MetadataError` (and anything else), logs one WARNING and falls back
to generic metadata. A dedicated type keeps the messages short and free of tracebacks for the
expected failures, while unexpected exceptions are still caught and named by their type.
"""

from __future__ import annotations

from pwsup.errors import PwsupError


class MetadataError(PwsupError):
    """Runtime metadata could not be fetched or understood; the message says why."""
