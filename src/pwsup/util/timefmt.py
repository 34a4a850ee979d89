"""Timestamps as the API server wants them: ISO-8601, UTC, microseconds, explicit offset."""

from __future__ import annotations

import time


def utc_now() -> str:
    """Now, e.g. `2026-11-28T20:13:58.123456+00:00` (no `datetime` import on the start path)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + \
        f".{int(now % 1 * 1e6):06d}+00:00"
