"""RUNNING updates of a started execution: heartbeats, attempts and status values.

One update is in flight at a time, the others wait their turn in order. Status values from
the command are held until `--status-update-interval` allows the next update (at once when
it has passed; without an interval they go with the next heartbeat or update), and are
dropped from the pending set only once the server has them. A function's status values
(embedded mode) follow proc_wrapper's rule, which code written for it expects: they go at
once when no update has gone yet or the interval has passed since the last update of any
kind, else with the next update. Once the final report takes over, no RUNNING update
follows it: one waiting for its retry is dropped (its values stay pending, so the final
report carries them); in embedded mode the final report also waits for the answer to an
update attempt on the wire (at most `--api-request-timeout`), so values the server already
has are not sent again. After an update could not be delivered, updates pause for
`--api-resume-delay` (or stop for good), so a struggling server is not kept busy with
them. A 409 answer means the server stopped the execution: the parent hears of it and
updates stop.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pwsup.api.policy import Kind, Verdict
from pwsup.ipc import messages as m
from pwsup.supervisor.reporting.sanitize import Sanitizer, without_status

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.api.policy import Decision, Outcome
    from pwsup.config.params import Params
    from pwsup.supervisor.deadlines import Deadline, Deadlines
    from pwsup.supervisor.reporting.api_calls import Call, CallRunner
    from pwsup.util.log import Log

EXECUTIONS = "/api/v1/task_executions/"
METADATA = "other_runtime_metadata"


def execution_path(uuid: str) -> str:
    """Where updates of one execution go (the server need not echo the execution back)."""
    return f"{EXECUTIONS}{quote(uuid, safe='')}/?content=false"  # one path segment, always


class RunningUpdates:
    """Sends RUNNING updates while the execution runs; `end()` once the final report goes."""

    def __init__(self, params: Params, calls: CallRunner, deadlines: Deadlines, log: Log,
                 reply: Callable[[m.Message], None], *, embedded: bool = False) -> None:
        self.embedded = embedded
        self.calls = calls
        self.deadlines = deadlines
        self.log = log
        self.reply = reply
        self.heartbeat_interval = params.api_heartbeat_interval
        self.status_interval = params.status_update_interval
        self.resume_delay = calls.policy.resume_delay
        self.final_wait = calls.policy.request_timeout
        """Embedded mode: the longest the final report waits for the answer to an update
        attempt on the wire — the longest one attempt may take (None: -1, no limit, and the
        update's own deadline, --api-error-timeout, bounds the wait)."""
        self.path: str | None = None
        """Set once the execution exists; until then nothing is sent."""
        self.ended = False
        self.pending: dict[str, Any] = {}
        """Status values not yet delivered (the final report carries what is left)."""
        self.queue: deque[dict[str, Any]] = deque()
        self.call: Call | None = None
        self.heartbeat: Deadline | None = None
        self.status_timer: Deadline | None = None
        self.resume_at: float | None = None
        self.last_status_sent: float | None = None
        self.last_update_at: float | None = None
        """When the server last took an update of any kind (the embedded rule counts it)."""
        self.begun = 0
        """Updates started so far: in embedded mode the first status values go at once."""
        self.waiting: Callable[[], None] | None = None
        """The final report, waiting for the update on the wire (see `after_update`)."""
        self.waited = False
        self.sanitizer = Sanitizer(log.warning)
        self.refused = 0
        """How many times the server refused status values (a 400): each time they are
        dropped and the update is sent again without them."""

    def begin(self, uuid: str) -> None:
        """The execution exists: updates may go out, and heartbeats start."""
        self.path = execution_path(uuid)
        self._schedule_heartbeat()

    def end(self) -> None:
        """The final report takes over: no more heartbeats or updates, and no retry of one
        (an update waiting for its retry is dropped; its status values stay pending, for
        the final report), so no RUNNING update follows the final status."""
        self.ended = True
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        self.queue.clear()
        call = self.call
        if call is not None:
            call.abandon_retries = True  # an attempt on the wire: its answer is its last
            if not call.in_flight:
                call.closed = True  # between two attempts: the next one never goes
                self.call = None

    def after_update(self, then: Callable[[], None], *, shutdown: bool) -> bool:
        """Embedded mode: call `then` once the update attempt on the wire has its answer
        (its last: no retry follows), or `final_wait` has passed; False (and nothing
        happens) in wrapped mode, when no attempt is on the wire, when shutting down, or
        once it waited: the final report waits once. The wait keeps the server from
        getting a RUNNING update after the final status (code written for proc_wrapper
        expects that order) and the final report from repeating values the server has.
        Wrapped mode never waits: a hung heartbeat must not delay the final report at all
        (it goes on the request thread kept free for it)."""
        call = self.call
        if (not self.embedded or call is None or not call.in_flight or shutdown
                or self.waited):
            return False
        self.waited = True
        self.waiting = then
        call.abandon_retries = True
        if self.final_wait is not None:
            self.deadlines.after(self.final_wait, "final report waits for an update",
                                 self._release)
        return True

    def _release(self) -> None:
        then, self.waiting = self.waiting, None
        if then is not None:
            then()

    def status(self, fields: dict[str, Any]) -> None:
        """New status values: send them now if the interval allows, else with a heartbeat."""
        fields = self.sanitizer.fields(fields)
        if not fields:
            return
        self.pending.update(fields)
        self._send_status_when_allowed()

    def send(self, fields: dict[str, Any]) -> None:
        """Queue a RUNNING update; one is in flight at a time, in order."""
        if self.path is None or self.ended:
            return
        if self.resume_at is not None and time.monotonic() < self.resume_at:
            self.log.debug("skipping an update: retries ran out recently (--api-resume-delay)")
            return
        self.queue.append(fields)
        self._next()

    # -- timing --------------------------------------------------------------------------------

    def _send_status_when_allowed(self) -> None:
        """Pending status goes out as soon as its rule allows (at once, or by a timer when
        the interval has yet to pass); otherwise it rides with the next update."""
        if not self.pending or self.status_timer is not None:
            return
        wait = self._status_wait()
        if wait is None:
            return
        if wait == 0.0 and self.call is None and not self.queue:
            self.send({})
        else:
            self.status_timer = self.deadlines.after(max(wait, 0.01), "status update",
                                                     self._status_timer_fired)

    def _status_wait(self) -> float | None:
        """Seconds until pending status may go in an update of its own; None: only with
        the next heartbeat or update. Wrapped mode counts the interval from the last status
        sent; embedded mode, as proc_wrapper, from the last update of any kind, and sends
        the first status values at once when no update has gone yet."""
        interval = self.status_interval
        if self.embedded:
            if self.begun == 0:
                return 0.0
            last = self.last_update_at
        else:
            last = self.last_status_sent
        if interval is None:
            return None
        return 0.0 if last is None else max(0.0, last + interval - time.monotonic())

    def _status_timer_fired(self) -> None:
        self.status_timer = None
        self._send_status_when_allowed()

    def _schedule_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        interval = self.heartbeat_interval
        if interval is not None and not self.ended:
            self.heartbeat = self.deadlines.after(interval, "heartbeat", self._beat)

    def _beat(self) -> None:
        self.heartbeat = None
        if self.call is None and not self.queue:
            self.send({})
        self._schedule_heartbeat()

    # -- sending -------------------------------------------------------------------------------

    def _next(self) -> None:
        if self.call is not None or not self.queue or self.path is None:
            return
        fields = self.queue.popleft()
        sent = dict(self.pending)
        body = {"status": "RUNNING", **sent, **fields}
        metadata = sent.get(METADATA), fields.get(METADATA)
        if isinstance(metadata[0], dict) and isinstance(metadata[1], dict):
            # The command's metadata and pwsup's (what a failed attempt cost) go together.
            body[METADATA] = {**metadata[0], **metadata[1]}
        self.begun += 1
        self.call = self.calls.start(
            Kind.UPDATE, "PATCH", self.path, body,
            on_done=lambda outcome: self._delivered(sent, outcome),
            on_fail=lambda call, decision: self._failed(call, decision, fields, sent))

    def _delivered(self, sent: dict[str, Any], outcome: Outcome) -> None:
        self.last_update_at = time.monotonic()
        if sent:
            self.last_status_sent = self.last_update_at
        for key, value in sent.items():
            if self.pending.get(key) == value:
                del self.pending[key]
        self.resume_at = None
        self._over()
        self._schedule_heartbeat()
        self._send_status_when_allowed()

    def _failed(self, call: Call, decision: Decision, fields: dict[str, Any],
                sent: dict[str, Any]) -> None:
        if self.ended:  # the final report took over: a late answer changes nothing
            self._over()
            return
        if call.last_status == 400 and sent:
            self._refused(fields, sent, decision)
            return
        if decision.verdict is Verdict.STOPPED:
            self.queue.clear()
            if self.heartbeat is not None:
                self.heartbeat.cancel()
            self.reply(m.StopRequested(decision.reason))
        else:
            delay = self.resume_delay
            self.log.error(f"an update could not be delivered ({decision.reason}); "
                           + ("updates stop" if delay is None else
                              f"updates resume in {delay:g} s"))
            self.resume_at = float("inf") if delay is None else time.monotonic() + delay
        self._over()

    def _refused(self, fields: dict[str, Any], sent: dict[str, Any],
                 decision: Decision) -> None:
        """The server refused an update carrying status values: they are what it could
        not take (the rest of the body it takes on every heartbeat), so they are dropped
        and the update goes again at once without them — a bad value never costs the
        heartbeat, the later values or the final report."""
        self.refused += 1
        self.log.warning(f"the server refused status values ({decision.reason}); "
                         f"sending the update without them: {sorted(sent)}")
        for key, value in sent.items():
            if self.pending.get(key) == value:
                del self.pending[key]
        self.queue.appendleft(without_status(fields))
        self._over()

    def _over(self) -> None:
        self.call = None
        if self.waiting is not None:
            self._release()
            return
        self._next()
