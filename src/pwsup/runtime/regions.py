"""Finding the AWS region from the identifiers the metadata endpoints return.

proc_wrapper stored the region under a key the secrets code never read, and derived it from an
availability zone by dropping its last character, which is wrong for Local Zones and
Wavelength zones (`us-west-2-lax-1a` is in `us-west-2`). Here the region is matched by its
shape instead, and ARNs are used when no zone is known.
"""

from __future__ import annotations

import re

_REGION_PREFIX = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)")
"""A region: a two-letter area, one or more words (`gov`, `iso`, `north`...), a number."""


def region_of_zone(zone: str | None) -> str | None:
    """The region an availability zone (`eu-west-1b`, `us-west-2-lax-1a`) belongs to."""
    if not zone:
        return None
    match = _REGION_PREFIX.match(zone)
    return match.group(1) if match else None


def region_of_arn(arn: str | None) -> str | None:
    """The region field of an ARN (`arn:aws:ecs:eu-west-1:...` → `eu-west-1`), if any."""
    if not arn or not arn.startswith("arn:"):
        return None
    fields = arn.split(":")
    return (fields[3] or None) if len(fields) > 4 else None


def first_region(*candidates: str | None) -> str | None:
    """The first non-empty candidate, so callers can list their sources in order."""
    return next((candidate for candidate in candidates if candidate), None)
