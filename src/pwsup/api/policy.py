"""What to do after each HTTP attempt: a pure decision, separate from sending and waiting.

What an answer means (`decide`):

```
 2xx                       → done
 409 on the start request  → conflict: retry every conflict delay until the conflict timeout
 409 on a RUNNING update   → the server stopped the execution
 409 on a final update     → the server already has a final status: give up
 429 502 503 504           → retry after Retry-After (seconds or HTTP date), else the retry delay
 other 5xx, network errors → retry after the retry delay
 other 4xx                 → give up at once (a retry cannot fix it)
```

What to do about it, given the time (`RetryPolicy.next`): every logical request has a total
time budget (the start request's error timeout — its conflict timeout once the server has
answered 409 —, the update error timeout, the final update timeout, capped at shutdown). A
retry that would start after the budget is spent is not made; a wait that would overshoot
it is cut to end at it, and the attempt then made is the last one (proc_wrapper slept the
full delay past it). Both are plain values and functions of the numbers they are given:
the caller reads the clocks and does the waiting.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING

from pwsup.util.record import Record, replace

if TYPE_CHECKING:
    from pwsup.config.params import Params

RETRY_AFTER_CAP = 600.0
"""A longer Retry-After is waited only this long: a server's mistake must not stall a run."""
RETRY_AFTER_FLOOR = 0.1
"""A shorter one (`Retry-After: 0`) is waited this long: whatever a server answers, pwsup
sends at most ten requests a second, each logged."""
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class Kind(enum.Enum):
    START = "start"
    UPDATE = "update"
    FINAL = "final"
    LOOKUP = "lookup"
    """The list of RUNNING executions, asked once before a start request is sent again."""


class Verdict(enum.Enum):
    DONE = "done"
    RETRY = "retry"
    CONFLICT = "conflict"
    STOPPED = "stopped"
    GIVE_UP = "give up"


class Outcome(Record):
    """What one attempt produced: a status code, or an error (network, timeout)."""

    status: int | None
    body: object = None
    retry_after: str | None = None
    error: str | None = None


class Decision(Record):
    """What to do next about a logical request."""

    verdict: Verdict
    delay: float = 0.0
    """Seconds to wait before the next attempt (RETRY and CONFLICT)."""
    reason: str = ""
    conflict: bool = False
    """The server answered the start request 409: the Task is at its concurrency limit.
    Also set when the request is given up for it, since that decides the exit code."""
    last_try: bool = False
    """The wait was cut to end at the deadline: the attempt then made is the last one."""
    exhausted: bool = False
    """Given up because the request's time ran out, not because of the answer itself."""


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date (measured from `now`, a
    wall-clock time), between RETRY_AFTER_FLOOR and RETRY_AFTER_CAP. None (so the retry
    delay applies) if absent or unreadable, negative, or a date already past: a server
    whose clock is behind pwsup's would otherwise be asked again at once, over and over."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        until = _seconds_until(text, now)
        if until is None or until <= 0:
            return None
        seconds = until
    if math.isnan(seconds) or seconds < 0:  # not a delay
        return None
    return max(RETRY_AFTER_FLOOR, min(seconds, RETRY_AFTER_CAP))


def _seconds_until(date: str, now: float) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(date).timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def decide(kind: Kind, outcome: Outcome, *, retry_delay: float, conflict_delay: float,
           now: float) -> Decision:
    """What one attempt's answer means, whatever the time left (`now`: the wall clock, for
    a Retry-After given as a date)."""
    status = outcome.status
    if status is None and kind is Kind.LOOKUP:
        return Decision(Verdict.GIVE_UP, reason=outcome.error or "network error")
    if status is None:
        return Decision(Verdict.RETRY, retry_delay, outcome.error or "network error")
    if 200 <= status < 300:
        return Decision(Verdict.DONE)
    if kind is Kind.LOOKUP:  # one try: the start request's own retry is what matters
        return Decision(Verdict.GIVE_UP, reason=f"HTTP {status}")
    if status == 409:
        if kind is Kind.START:
            return Decision(Verdict.CONFLICT, conflict_delay, "concurrency conflict",
                            conflict=True)
        if kind is Kind.UPDATE:
            return Decision(Verdict.STOPPED, reason="the server stopped the execution")
        return Decision(Verdict.GIVE_UP, reason="the server already has a final status")
    if status in RETRYABLE_STATUSES:
        after = retry_after_seconds(outcome.retry_after, now)
        return Decision(Verdict.RETRY, retry_delay if after is None else after,
                        f"HTTP {status}")
    if status >= 500:
        return Decision(Verdict.RETRY, retry_delay, f"HTTP {status}")
    return Decision(Verdict.GIVE_UP, reason=f"HTTP {status}")


class RetryPolicy(Record):
    """Every delay and time budget of the API requests, as one value.

    A budget of None means no limit. `request_timeout` is how long one attempt may take to
    answer; the last attempt, made at the deadline, still gets that long."""

    retry_delay: float = 0.0
    conflict_delay: float = 0.0
    start_timeout: float | None = None
    conflict_timeout: float | None = None
    update_timeout: float | None = None
    final_timeout: float | None = None
    shutdown_timeout: float | None = None
    request_timeout: float | None = None
    resume_delay: float | None = None
    """After an update could not be delivered, updates pause this long (None: for good)."""

    @classmethod
    def from_params(cls, p: Params) -> RetryPolicy:
        return cls(retry_delay=p.api_retry_delay,
                   conflict_delay=p.api_task_execution_creation_conflict_retry_delay or 0,
                   start_timeout=p.api_task_execution_creation_error_timeout,
                   conflict_timeout=p.api_task_execution_creation_conflict_timeout,
                   update_timeout=p.api_error_timeout,
                   final_timeout=p.api_final_update_timeout,
                   shutdown_timeout=p.shutdown_report_timeout,
                   request_timeout=p.api_request_timeout,
                   resume_delay=p.api_resume_delay)

    def budget(self, kind: Kind, *, conflicted: bool = False,
               shutdown: bool = False) -> float | None:
        """A logical request's total time, from its first attempt. Once the start request
        met a conflict, the conflict timeout replaces its error timeout; a final report
        made while the run is being shut down gets no more than the shutdown cap."""
        if kind is Kind.START:
            return self.conflict_timeout if conflicted else self.start_timeout
        if kind is Kind.LOOKUP:
            return self.request_timeout
        if kind is Kind.UPDATE:
            return self.update_timeout
        timeout = self.final_timeout
        if shutdown and self.shutdown_timeout is not None:
            cap = self.shutdown_timeout
            timeout = cap if timeout is None else min(timeout, cap)
        return timeout

    def time_left(self, kind: Kind, *, elapsed: float, conflicted: bool = False,
                  shutdown: bool = False) -> float | None:
        budget = self.budget(kind, conflicted=conflicted, shutdown=shutdown)
        return None if budget is None else budget - elapsed

    def answer_wait(self, kind: Kind, *, elapsed: float, conflicted: bool = False,
                    shutdown: bool = False, last_try: bool = False) -> float | None:
        """How long to wait for an attempt's answer before giving the request up (None: no
        limit here; the client's own timeouts still apply)."""
        left = self.time_left(kind, elapsed=elapsed, conflicted=conflicted, shutdown=shutdown)
        if left is None:
            return None
        grace = (self.request_timeout or 0.0) if last_try else 0.0
        return max(left, grace, 0.0)

    def next(self, kind: Kind, outcome: Outcome, *, elapsed: float, now: float,
             conflicted: bool = False, shutdown: bool = False,
             stop_retrying: bool = False) -> Decision:
        """The decision after one attempt of a request `elapsed` seconds old.

        `now` is the wall clock (for a Retry-After date); `conflicted`, whether an earlier
        attempt met a conflict; `stop_retrying`, that the run no longer wants the request
        retried (the answer in hand is taken as the last)."""
        decision = decide(kind, outcome, retry_delay=self.retry_delay,
                          conflict_delay=self.conflict_delay, now=now)
        if decision.verdict not in (Verdict.RETRY, Verdict.CONFLICT):
            return decision
        left = self.time_left(kind, elapsed=elapsed, conflicted=conflicted or decision.conflict,
                              shutdown=shutdown)
        if stop_retrying:
            return Decision(Verdict.GIVE_UP, reason=decision.reason, conflict=decision.conflict)
        if left is not None and left <= 0:
            return Decision(Verdict.GIVE_UP, reason=f"{decision.reason}; out of time to retry",
                            conflict=decision.conflict, exhausted=True)
        if left is None or decision.delay < left:
            return decision
        return replace(decision, delay=left, last_try=True)
