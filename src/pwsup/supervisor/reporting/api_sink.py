"""The reporter's API sink: the CloudReactor Task Execution protocol, driven by messages.

```
 Begin ────────▶ POST /api/v1/task_executions/ (or PATCH to attach) ──▶ Permit | Deny
 AttemptStarted ▶ PATCH {status: RUNNING, pid}            (with --send-pid)
 AttemptEnded ──▶ PATCH {status: RUNNING, exit_code, failed_attempts | timed_out_attempts}
 (every interval) PATCH {status: RUNNING, pending status fields}  ── 409 ──▶ StopRequested
 Finish ───────▶ PATCH {status: SUCCEEDED | FAILED | ..., exit_code, finished_at, ...}
                 ──▶ FinishDelivered
```

This module decides what happens when: the start request and what its answer means for the
run, and the final report (which waits for an unanswered start). The parts it wires:

```
api_calls.py    requests on worker threads, retries and watchdogs as deadlines
api_updates.py  heartbeats and RUNNING updates, one in flight at a time
api_bodies.py   the bodies, from params, runtime metadata and captured output
pwsup.api       the client, the bodies' encodings and the retry policy
```
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pwsup.api.adopt import find_ours, lookup_path
from pwsup.api.client import ApiClient
from pwsup.api.policy import Decision, Kind, Outcome, RetryPolicy, Verdict
from pwsup.config.options import ExecutionUuid
from pwsup.exitcodes import FAILURE, NOPERM, TEMPFAIL
from pwsup.ipc import messages as m
from pwsup.runtime import MetadataCache
from pwsup.supervisor.reporting.api_bodies import ReportBodies, attempt_fields
from pwsup.supervisor.reporting.api_calls import Call, CallRunner
from pwsup.supervisor.reporting.api_updates import EXECUTIONS, RunningUpdates, execution_path
from pwsup.supervisor.reporting.log_capture import LogCapture
from pwsup.supervisor.reporting.rollbar import RollbarReporter
from pwsup.supervisor.reporting.sanitize import STATUS_KEYS, without_status
from pwsup.supervisor.reporting.sink import Sink
from pwsup.supervisor.reporting.status_listener import StatusParser, listen, receive_all

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.config.params import Params

METADATA_TIMEOUT = 1.0
"""Per request to a metadata endpoint (ECS, IMDS); a whole fetch takes at most 4x this, which
bounds how long a slow endpoint can delay the command's start."""
ROLLBAR_FLUSH_CAP = 1.0
"""At exit, the longest the reporter waits for Rollbar reports still queued."""


class ApiSink(Sink):
    """Reports the run to the API server. Created in the reporter when the run is online."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params = self.seed.params
        self.uuid = self.seed.execution_uuid
        self.rollbar = RollbarReporter(p, self.log, execution_uuid_getter=lambda: self.uuid)
        self.calls = CallRunner(ApiClient(p), RetryPolicy.from_params(p), self.deadlines,
                                self.log, self.rollbar)
        self.updates = RunningUpdates(p, self.calls, self.deadlines, self.log, self.reply,
                                      embedded=self.seed.embedded)
        self.listener = listen(p, self.log)
        self.parser = StatusParser(p.status_update_message_max_bytes, self.log.warning)
        self.capture = LogCapture.open(p, self.seed.capture)
        environ = os.environ if self.seed.environ is None else self.seed.environ
        metadata = MetadataCache(p, environ, timeout=METADATA_TIMEOUT,
                                 lambda_context=self.seed.lambda_context)
        self.bodies = ReportBodies(self.seed, self.log, metadata, self.capture)
        self.sampled_out = False
        """The start was not reported by choice (sampling): a failure is reported late."""
        self.start_call: Call | None = None
        self.final_call: Call | None = None
        self.pending_finish: m.Finish | None = None
        self.final_has_status = False
        self.ended = self.seed.ended
        """The last attempt's end: what it cost goes with the final report."""
        if self.uuid:
            self.log.execution_uuid = self.uuid
            self.updates.begin(self.uuid)

    def fds(self) -> dict[int, Callable[[], None]]:
        fds = {self.calls.wake_fd: self.calls.drain}
        if self.listener is not None:
            fds[self.listener.fileno()] = self._on_datagrams
        if self.capture is not None:
            for fd, stream in self.capture.fds():
                fds[fd] = stream.pump
        return fds

    def close(self) -> None:
        self.calls.close()
        if self.rollbar.enabled:
            self.rollbar.flush(ROLLBAR_FLUSH_CAP)  # errors of the last moments, briefly
        self.rollbar.close(0.1)
        if self.listener is not None:
            self.listener.close()

    def _on_datagrams(self) -> None:
        assert self.listener is not None
        self.updates.status(receive_all(self.listener, self.parser))

    def handle(self, message: m.Message) -> None:
        if isinstance(message, m.Begin):
            self._begin(message)
        elif isinstance(message, m.AttemptStarted):
            if self.params.send_pid:
                self.updates.send({"pid": message.pid})
        elif isinstance(message, m.AttemptEnded):
            self.ended = message
            if message.will_retry:
                self.updates.send(attempt_fields(message, embedded=self.seed.embedded))
        elif isinstance(message, m.StatusUpdate):
            self.updates.status(message.fields)
        elif isinstance(message, m.Finish):
            self._finish(message)

    def final_pending(self) -> bool:
        call = self.final_call
        return self.pending_finish is not None or (call is not None and not call.closed)

    # -- start ---------------------------------------------------------------------------------

    def _begin(self, begin: m.Begin) -> None:
        p = self.params
        if self.uuid:
            self.reply(m.Permit(self.uuid))
            return
        if not p.task_execution_uuid and random.random() >= p.api_managed_probability:
            self.log.info("this run is not reported (sampled out by --api-managed-probability)")
            self.sampled_out = True
            self.reply(m.Permit(None))
            return
        attach = bool(p.task_execution_uuid)
        body, notes = self.bodies.start(begin.started_at, attach=attach, begin=begin)
        for note in notes:
            self.log.info(note)
        if p.task_execution_uuid:
            method, path = "PATCH", f"{EXECUTIONS}{quote(p.task_execution_uuid, safe='')}/"
        else:
            method, path = "POST", EXECUTIONS
        self.start_call = self.calls.start(
            Kind.START, method, path, body, on_done=self._started, on_fail=self._start_failed,
            before_retry=None if attach else self._look_for_ours)

    def _look_for_ours(self, call: Call, go_on: Callable[[], None]) -> None:
        """The start's answer may be lost: before it is sent again (or given up), look for
        the execution it may have created, and adopt it (see `pwsup.api.adopt`)."""
        task = call.body.get("task")
        path = lookup_path(task if isinstance(task, dict) else {})

        def found(outcome: Outcome) -> None:
            ours = find_ours(outcome.body, call.body)
            if ours is None or call.closed:
                go_on()
                return
            self.log.warning(f"the answer to the start request was lost; the execution it "
                             f"created ({ours['uuid']}) is adopted")
            call.closed = True
            self._started(Outcome(201, body=ours))

        self.calls.start(Kind.LOOKUP, "GET", path, {}, on_done=found,
                         on_fail=lambda _call, _decision: go_on())

    def _started(self, outcome: Outcome) -> None:
        body = outcome.body if isinstance(outcome.body, dict) else {}
        uuid = self.params.task_execution_uuid or body.get("uuid")
        problem = _uuid_problem(uuid)
        if problem:
            assert self.start_call is not None
            self._start_failed(self.start_call, Decision(Verdict.GIVE_UP, reason=problem))
            return
        assert isinstance(uuid, str)
        self.uuid = self.seed.execution_uuid = uuid
        self.log.execution_uuid = uuid
        self.log.info(f"Task Execution {uuid} started")
        self.reply(m.Permit(uuid))
        self.updates.begin(uuid)
        if self.pending_finish is not None:
            self._finish(self.pending_finish)

    def _start_failed(self, call: Call, decision: Decision) -> None:
        self.reply(_start_refused(self.params, call, decision, self.log.warning))
        self.rollbar.report(f"Exited before API Server notified of start: {decision.reason}",
                            self.calls.request_data(call))
        if self.pending_finish is not None:
            self.pending_finish = None
            self.reply(m.FinishDelivered(False, "the execution was never created"))

    # -- the final report ---------------------------------------------------------------------

    def _finish(self, finish: m.Finish) -> None:
        if self.start_call is not None and not self.start_call.closed:
            self.pending_finish = finish  # the start request's answer decides what happens
            self.start_call.abandon_retries = True
            return
        if self.updates.after_update(lambda: self._finish(finish), shutdown=finish.shutdown):
            self.pending_finish = finish  # the update on the wire reaches the server first
            return
        self.pending_finish = None
        self.updates.end()
        if self.listener is not None:  # the last words
            self.updates.pending.update(receive_all(self.listener, self.parser))
        if self.uuid:
            self._send_final("PATCH", execution_path(self.uuid),
                             self.bodies.final(finish, self.updates.pending, self.ended), finish)
        elif self.sampled_out and _should_report_late(self.params, finish.status):
            # A sampled-out run that did not succeed is reported after all, in one request.
            body, _ = self.bodies.start(finish.finished_at, attach=False)
            body.update(self.bodies.final(finish, self.updates.pending, self.ended))
            self._send_final("POST", EXECUTIONS, body, finish)
        else:
            self.reply(m.FinishDelivered(False, "this run is not reported"))

    def _send_final(self, method: str, path: str, body: dict[str, Any],
                    finish: m.Finish) -> None:
        # Whether the command's status values ride along: only they make a refusal (400)
        # worth one more try without them (pwsup's own figures go in the same fields).
        self.final_has_status = bool(STATUS_KEYS.intersection(self.updates.pending))
        self.final_call = self.calls.start(Kind.FINAL, method, path, body,
                                           on_done=self._final_done, on_fail=self._final_failed,
                                           shutdown=finish.shutdown)

    def _final_done(self, outcome: Outcome) -> None:
        self.log.debug("the final status was delivered")
        self.reply(m.FinishDelivered(True))

    def _final_failed(self, call: Call, decision: Decision) -> None:
        if call.last_status == 400 and self.final_has_status:
            self.final_has_status = False
            # Status values the server cannot take must not cost the run its outcome.
            self.log.warning(f"the server refused the final report's status values "
                             f"({decision.reason}); sending it without them")
            self.final_call = self.calls.start(
                Kind.FINAL, call.method, call.path, without_status(call.body),
                on_done=self._final_done, on_fail=self._final_failed, shutdown=call.shutdown)
            return
        if call.last_status == 409:  # e.g. after a stop on the server: it keeps its status
            self.log.info(f"the server kept its own final status ({decision.reason})")
            self.reply(m.FinishDelivered(False, decision.reason))
            return
        self.log.error(f"the final status could not be delivered: {decision.reason}")
        self.rollbar.report(f"API Server not responding properly: the final status could not "
                            f"be delivered ({decision.reason})", self.calls.request_data(call))
        self.reply(m.FinishDelivered(False, decision.reason))


def _start_refused(p: Params, call: Call, decision: Decision,
                   warn: Callable[[str], None]) -> m.Message:
    """The parent's answer when the execution could not be created: a conflict keeps the
    command from starting (exit 75), and so does any failure with --prevent-offline-execution
    (77 when the server refused the key); otherwise the command runs unreported.

    A 409 to attaching (PATCH RUNNING to an execution named by --task-execution-uuid, or
    by the input in embedded mode) is no concurrency limit: the server refuses RUNNING
    after a final status or a stop, so the execution is over and the run must not start."""
    if call.conflicted and call.method == "PATCH":
        return m.Deny(TEMPFAIL, f"Task Execution {p.task_execution_uuid} has already finished "
                                "or was stopped: the server refused to mark it RUNNING "
                                "again (HTTP 409)")
    if call.conflicted:
        return m.Deny(TEMPFAIL, f"the Task is at its concurrency limit ({decision.reason})")
    if p.prevent_offline_execution:
        code = NOPERM if call.last_status == 403 else FAILURE
        return m.Deny(code, f"could not create the Task Execution ({decision.reason}) "
                            "and offline execution is prevented")
    warn(f"could not create the Task Execution ({decision.reason}); the command runs "
         "unreported")
    return m.Permit(None)


def _should_report_late(p: Params, status: str) -> bool:
    if status == "SUCCEEDED":
        return False
    probability = (p.api_timeout_report_probability if status == "TERMINATED_AFTER_TIME_OUT"
                   else p.api_failure_report_probability)
    return bool(random.random() < probability)


def _uuid_problem(uuid: object) -> str | None:
    """Why the server's execution uuid cannot be used, if it cannot (see ExecutionUuid)."""
    if not isinstance(uuid, str) or not uuid:
        return "the server's answer has no execution uuid"
    try:
        ExecutionUuid().parse(uuid)
    except ValueError as e:
        return f"the server's answer has an execution uuid pwsup cannot use: {e}"
    return None
