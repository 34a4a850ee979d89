"""Logical API requests, each retried until it is done, given up, or out of time.

```
 start() ─▶ attempt on a worker thread ──outcome──▶ wake-up pipe ──▶ drain() in the loop
                 ▲                                                      │
                 └──── retry deadline ◀── RetryPolicy.next: retry ──────┤
                                                                        ├─ done ──▶ on_done
 watchdog deadline: no answer in time ─────────────────────────────────▶└─ give up ▶ on_fail
```

Attempts run on two worker threads (one for heartbeats and intermediate updates, one free
for the final update), so a hung request never blocks the reporter's loop nor the final
report; the client keeps a keep-alive session per thread. The loop owns all state: workers
only hand their outcome back through the wake-up pipe, and every retry and watchdog is a
deadline. An attempt still running when its request's time is up is abandoned, so a
request's budget is a total one. What to do after each answer is the policy's (a pure
function of the answer and the time); this module reads the clocks and acts.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pwsup.api.adopt import answer_may_be_lost, worth_looking
from pwsup.api.policy import Decision, Kind, Outcome, Verdict

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.api.client import ApiClient
    from pwsup.api.policy import RetryPolicy
    from pwsup.supervisor.deadlines import Deadline, Deadlines
    from pwsup.supervisor.reporting.rollbar import RollbarReporter
    from pwsup.util.log import Log

UNREPORTED_STATUSES = frozenset({409, 429, 502, 503, 504})
"""Error answers Rollbar does not hear of per attempt: conflicts, stops and rate limiting
are part of the protocol (a request that never gets through is reported when given up)."""


class Call:
    """One logical request and where it stands. The runner owns it; callers read it."""

    def __init__(self, kind: Kind, method: str, path: str, body: dict[str, Any], *,
                 on_done: Callable[[Outcome], None],
                 on_fail: Callable[[Call, Decision], None], shutdown: bool = False) -> None:
        self.kind, self.method, self.path, self.body = kind, method, path, body
        self.on_done, self.on_fail = on_done, on_fail
        self.shutdown = shutdown
        """A final report made while the run is being shut down (its budget is capped)."""
        self.started = time.monotonic()
        self.in_flight = False
        self.closed = False
        self.conflicted = False
        self.abandon_retries = False
        """Set when the run no longer needs the request retried: its next answer is final."""
        self.last_try = False
        self.last_status: int | None = None
        self.watchdog: Deadline | None = None
        self.answer_lost = False
        """An earlier attempt may have been applied by the server without its answer."""
        self.before_retry: Callable[[Call, Callable[[], None]], None] | None = None
        """Asked before a failed attempt whose answer may have been lost is acted on (retried
        or given up): it may settle the call itself, or go on with the given function."""

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class CallRunner:
    """Sends calls on worker threads and turns every wait into a deadline of the loop."""

    def __init__(self, client: ApiClient, policy: RetryPolicy, deadlines: Deadlines,
                 log: Log, rollbar: RollbarReporter) -> None:
        self.client = client
        self.policy = policy
        self.deadlines = deadlines
        self.log = log
        self.rollbar = rollbar
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pwsup-api")
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)
        self._completed: deque[tuple[Call, Outcome]] = deque()
        self._lock = threading.Lock()

    def start(self, kind: Kind, method: str, path: str, body: dict[str, Any], *,
              on_done: Callable[[Outcome], None], on_fail: Callable[[Call, Decision], None],
              shutdown: bool = False,
              before_retry: Callable[[Call, Callable[[], None]], None] | None = None) -> Call:
        """Make the first attempt now; retries follow on their own."""
        call = Call(kind, method, path, body, on_done=on_done, on_fail=on_fail,
                    shutdown=shutdown)
        call.before_retry = before_retry
        self._submit(call)
        return call

    def close(self) -> None:
        """Stop taking attempts; one on the wire is left to end on its own timeouts."""
        self.pool.shutdown(wait=False, cancel_futures=True)

    def drain(self) -> None:
        """The wake-up pipe is readable: act on every outcome the workers handed over."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            with self._lock:
                if not self._completed:
                    return
                call, outcome = self._completed.popleft()
            self._on_outcome(call, outcome)

    def request_data(self, call: Call, *, error: str | None = None,
                     response: Outcome | None = None) -> dict[str, Any]:
        """The request (and its answer or error) as data for a Rollbar report."""
        data: dict[str, Any] = {"request": {"url": self.client.base_url + call.path,
                                            "method": call.method, "body": call.body}}
        if error is not None:
            data["error"] = {"reason": error}
        if response is not None:
            data["response"] = {"status_code": response.status, "body": response.body}
        return data

    # -- attempts ------------------------------------------------------------------------------

    def _submit(self, call: Call) -> None:
        call.in_flight = True
        wait = self.policy.answer_wait(call.kind, elapsed=call.elapsed(),
                                       conflicted=call.conflicted, shutdown=call.shutdown,
                                       last_try=call.last_try)
        if wait is not None:
            call.watchdog = self.deadlines.after(wait, "request deadline",
                                                 lambda: self._on_watchdog(call))
        try:
            future = self.pool.submit(self.client.send, call.method, call.path, call.body)
        except RuntimeError as e:  # no thread to be had (out of processes): a failed try
            self._post(call, Outcome(None, error=f"cannot start a request thread: {e}"))
            return
        future.add_done_callback(lambda f: self._post(call, _outcome_of(f)))

    def _post(self, call: Call, outcome: Outcome) -> None:
        """Runs on a worker thread: hand the outcome to the loop."""
        with self._lock:
            self._completed.append((call, outcome))
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:
            pass  # the loop is already due to wake up

    def _on_outcome(self, call: Call, outcome: Outcome) -> None:
        call.in_flight = False
        if call.watchdog is not None:
            call.watchdog.cancel()
        if call.closed:
            return  # given up meanwhile (its deadline passed): the answer came too late
        call.last_status = outcome.status
        shown = outcome.status if outcome.status is not None else outcome.error
        self.log.debug(f"{call.method} {call.path} -> {shown}")
        self._report_attempt(call, outcome)
        decision = self.policy.next(call.kind, outcome, elapsed=call.elapsed(), now=time.time(),
                                    conflicted=call.conflicted, shutdown=call.shutdown,
                                    stop_retrying=call.abandon_retries
                                    or (_attaching(call) and outcome.status == 409))
        if decision.conflict and not call.conflicted:
            call.conflicted = True
            self.log.warning(
                "the server refuses to mark the execution RUNNING: it has already finished "
                "or was stopped" if _attaching(call) else
                "the server reports a concurrency conflict: another execution of this Task "
                "is running")
        hook = call.before_retry
        look = worth_looking(outcome.status, earlier_lost=call.answer_lost)
        call.answer_lost = call.answer_lost or answer_may_be_lost(outcome.status)
        if hook is not None and decision.verdict is not Verdict.DONE and look:
            hook(call, lambda: self._act(call, outcome, decision))
        else:
            self._act(call, outcome, decision)

    def _act(self, call: Call, outcome: Outcome, decision: Decision) -> None:
        """Carry out the decision about one attempt's answer."""
        if call.closed:
            return  # settled meanwhile (an execution was adopted, or its time ran out)
        if decision.verdict is Verdict.DONE:
            call.closed = True
            call.on_done(outcome)
        elif decision.verdict in (Verdict.RETRY, Verdict.CONFLICT):
            call.last_try = decision.last_try
            self.log.info(f"{call.method} {call.path}: {decision.reason}; "
                          f"retrying in {decision.delay:g} s")
            self.deadlines.after(decision.delay, "retry", lambda: self._resubmit(call))
        else:
            self._fail(call, decision)

    def _resubmit(self, call: Call) -> None:
        if not call.closed:
            self._submit(call)

    def _on_watchdog(self, call: Call) -> None:
        """No answer in time: give up — but an unanswered attempt may have been applied, so
        a call that looks before giving up (a start) looks once more first. The abandoned
        attempt's answer, should it still come during that look, is taken as it is."""
        if not call.in_flight or call.closed:
            return
        call.in_flight = False
        call.answer_lost = True
        decision = Decision(Verdict.GIVE_UP, reason="no answer before the deadline",
                            exhausted=True)
        hook, call.before_retry = call.before_retry, None
        if hook is None:
            self._fail(call, decision)
        else:
            hook(call, lambda: None if call.closed else self._fail(call, decision))

    def _fail(self, call: Call, decision: Decision) -> None:
        call.closed = True
        if decision.exhausted:
            self.rollbar.report(f"Exhausted retry timeout for {call.method} {call.path}: "
                                f"{decision.reason}", self.request_data(call))
        call.on_fail(call, decision)

    def _report_attempt(self, call: Call, outcome: Outcome) -> None:
        """Rollbar hears of network errors and of answers a retry cannot fix."""
        if outcome.status is None:
            self.rollbar.report(f"API request failed: {outcome.error}",
                                self.request_data(call, error=outcome.error))
        elif outcome.status >= 400 and outcome.status not in UNREPORTED_STATUSES:
            self.rollbar.report(f"Got error response code = {outcome.status}",
                                self.request_data(call, response=outcome))


def _attaching(call: Call) -> bool:
    """The start request joins an execution the server made (PATCH RUNNING): a 409 to it is
    no concurrency limit but an execution that is over — final, so it is not retried."""
    return call.kind is Kind.START and call.method == "PATCH"


def _outcome_of(future: Future[Outcome]) -> Outcome:
    """A finished attempt's outcome; a cancelled or failed one (the pool shut down, a bug
    in the client) is a failed try, never an exception in a pool thread's callback."""
    if future.cancelled():
        return Outcome(None, error="the request was cancelled")
    error = future.exception()
    if error is not None:
        return Outcome(None, error=f"{type(error).__name__}: {error}")
    return future.result()
