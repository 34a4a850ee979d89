"""What to do after each HTTP attempt: a pure decision, separate from sending and sleeping.

```
 2xx                       → done
 409 on the start request  → conflict: retry every conflict delay until the conflict timeout
 409 on a RUNNING update   → the server stopped the execution
 409 on a final update     → the server already has a final status: give up
 429 502 503 504           → retry after Retry-After (seconds or HTTP date), else the retry delay
 other 5xx, network errors → retry after the retry delay
 other 4xx                 → give up at once (a retry cannot fix it)
```

Every retry is bounded by the logical request's deadline; a wait that would overshoot the
deadline is cut to end at it (proc_wrapper slept the full delay past it).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

RETRY_AFTER_CAP = 600.0
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class Kind(enum.Enum):
    START = "start"
    UPDATE = "update"
    FINAL = "final"


class Verdict(enum.Enum):
    DONE = "done"
    RETRY = "retry"
    CONFLICT = "conflict"
    STOPPED = "stopped"
    GIVE_UP = "give up"


@dataclass(frozen=True)
class Outcome:
    """What one attempt produced: a status code, or an error (network, timeout)."""

    status: int | None
    body: object = None
    retry_after: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0
    reason: str = ""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date. None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, min(float(text), RETRY_AFTER_CAP))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, min(when - current, RETRY_AFTER_CAP))


def decide(kind: Kind, outcome: Outcome, *, retry_delay: float,
           conflict_delay: float) -> Decision:
    """The verdict on one attempt of a logical request."""
    status = outcome.status
    if status is None:
        return Decision(Verdict.RETRY, retry_delay, outcome.error or "network error")
    if 200 <= status < 300:
        return Decision(Verdict.DONE)
    if status == 409:
        if kind is Kind.START:
            return Decision(Verdict.CONFLICT, conflict_delay, "concurrency conflict")
        if kind is Kind.UPDATE:
            return Decision(Verdict.STOPPED, reason="the server stopped the execution")
        return Decision(Verdict.GIVE_UP, reason="the server already has a final status")
    if status in RETRYABLE_STATUSES:
        after = retry_after_seconds(outcome.retry_after)
        return Decision(Verdict.RETRY, retry_delay if after is None else after,
                        f"HTTP {status}")
    if status >= 500:
        return Decision(Verdict.RETRY, retry_delay, f"HTTP {status}")
    return Decision(Verdict.GIVE_UP, reason=f"HTTP {status}")
