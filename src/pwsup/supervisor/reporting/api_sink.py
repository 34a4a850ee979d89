"""The reporter's API sink: the CloudReactor Task Execution protocol, driven by messages.

```
 Begin ────────▶ POST /api/v1/task_executions/ (or PATCH to attach) ──▶ Permit | Deny
 AttemptStarted ▶ PATCH {status: RUNNING, pid}            (with --send-pid)
 AttemptEnded ──▶ PATCH {status: RUNNING, exit_code, failed_attempts | timed_out_attempts}
 (every interval) PATCH {status: RUNNING, pending status fields}  ── 409 ──▶ StopRequested
 Finish ───────▶ PATCH {status: SUCCEEDED | FAILED | ..., exit_code, finished_at, ...}
                 ──▶ FinishDelivered
```

HTTP attempts run on two worker threads (one for heartbeats and intermediate updates, one
free for the final update), so a hung request never blocks the reporter's loop nor the
final report. Each worker thread keeps its own keep-alive session. The loop owns all state:
attempts report back through a wake-up pipe, and every retry, watchdog and heartbeat is a
deadline. An attempt still running when its logical request's deadline passes is
abandoned, so the deadline is a total one.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pwsup.api.body import execution_metadata, start_body
from pwsup.api.client import ApiClient
from pwsup.api.policy import Decision, Kind, Outcome, Verdict, decide
from pwsup.config import values
from pwsup.exitcodes import FAILURE, NOPERM, TEMPFAIL
from pwsup.ipc import messages as m
from pwsup.runtime import MetadataCache
from pwsup.supervisor.reporting.log_capture import LogCapture
from pwsup.supervisor.reporting.rollbar import RollbarReporter
from pwsup.supervisor.reporting.sink import Sink
from pwsup.supervisor.reporting.status_listener import StatusParser, open_listener, receive_all
from pwsup.util import log as logs

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.supervisor.deadlines import Deadline

EXECUTIONS = "/api/v1/task_executions/"
METADATA_TIMEOUT = 1.0
"""Per request to a metadata endpoint (ECS, IMDS); a whole fetch takes at most 4x this, which
bounds how long a slow endpoint can delay the command's start."""
ROLLBAR_FLUSH_CAP = 1.0
"""At exit, the longest the reporter waits for Rollbar reports still queued."""


class Call:
    """One logical request, retried until it is done, given up, or past its deadline."""

    def __init__(self, kind: Kind, method: str, path: str, body: dict[str, Any], *,
                 timeout: float | None, on_done: Callable[[Outcome], None],
                 on_fail: Callable[[Call, Decision], None]) -> None:
        self.kind, self.method, self.path, self.body = kind, method, path, body
        self.timeout = timeout
        self.on_done, self.on_fail = on_done, on_fail
        self.started = time.monotonic()
        self.deadline = None if timeout is None else self.started + timeout
        self.in_flight = False
        self.closed = False
        self.conflicted = False
        self.abandon_retries = False
        self.last_try = False
        self.last_status: int | None = None
        self.watchdog: Deadline | None = None

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


class ApiSink(Sink):
    """Reports the run to the API server. Created in the reporter when the run is online."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.seed.params
        self.params = p
        self.client = ApiClient(p)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pwsup-api")
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.completed: deque[tuple[Call, Outcome]] = deque()
        self.lock = threading.Lock()
        self.uuid = self.seed.execution_uuid
        self.sampled_out = False
        """The start was not reported by choice (sampling): a failure is reported late."""
        self.status_timer: Deadline | None = None
        self.pending: dict[str, Any] = {}
        self.updates: deque[dict[str, Any]] = deque()
        self.update_call: Call | None = None
        self.start_call: Call | None = None
        self.final_call: Call | None = None
        self.pending_finish: m.Finish | None = None
        self.heartbeat: Deadline | None = None
        self.resume_at: float | None = None
        self.last_status_sent: float | None = None
        self.listener = self._open_listener()
        self.parser = StatusParser(p.status_update_message_max_bytes, self.log.warning)
        self.capture = self._open_capture()
        self.rollbar = RollbarReporter(p, self.log, execution_uuid_getter=lambda: self.uuid)
        self.metadata = MetadataCache(p, os.environ, timeout=METADATA_TIMEOUT,
                                      lambda_context=self.seed.lambda_context)
        if self.uuid:
            self.log.execution_uuid = self.uuid
            self._schedule_heartbeat()

    # -- plumbing -----------------------------------------------------------------------------

    def fds(self) -> dict[int, Callable[[], None]]:
        fds = {self.wake_r: self._drain}
        if self.listener is not None:
            fds[self.listener.fileno()] = self._on_datagrams
        if self.capture is not None:
            for fd, stream in self.capture.fds():
                fds[fd] = stream.pump
        return fds

    def _open_capture(self) -> LogCapture | None:
        p, fds = self.params, self.seed.capture
        if fds is None:
            return None
        return LogCapture(fds[0], fds[1], lines=p.log_capture_lines,
                          max_line=p.max_log_line_length, merge=p.merge_stdout_and_stderr_logs,
                          ignore_stdout=p.ignore_stdout, ignore_stderr=p.ignore_stderr)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.rollbar.enabled:
            self.rollbar.flush(ROLLBAR_FLUSH_CAP)  # errors of the last moments, briefly
        self.rollbar.close(0.1)
        if self.listener is not None:
            self.listener.close()

    def _open_listener(self) -> socket.socket | None:
        p = self.params
        if not p.enable_status_update_listener:
            return None
        try:
            return open_listener(p.status_update_host, p.status_update_socket_port,
                                 p.status_update_message_max_bytes)
        except OSError as e:
            self.log.warning(f"cannot listen for status updates on {p.status_update_host}:"
                             f"{p.status_update_socket_port} ({e.strerror}); the run goes on "
                             "without them")
            return None

    def _on_datagrams(self) -> None:
        assert self.listener is not None
        self._status(receive_all(self.listener, self.parser))

    def _status(self, fields: dict[str, Any]) -> None:
        """New status values: send them now if the interval allows, else with a heartbeat."""
        if not fields:
            return
        self.pending.update(fields)
        self._send_status_when_allowed()

    def _send_status_when_allowed(self) -> None:
        """Pending status goes out as soon as --status-update-interval allows (at once if
        the interval has passed, else when it does); without an interval, with heartbeats."""
        interval = self.params.status_update_interval
        if interval is None or not self.pending or self.status_timer is not None:
            return
        last = self.last_status_sent
        wait = 0.0 if last is None else max(0.0, last + interval - time.monotonic())
        if wait == 0.0 and self.update_call is None and not self.updates:
            self._update({})
        else:
            self.status_timer = self.deadlines.after(max(wait, 0.01), "status update",
                                                     self._status_timer_fired)

    def _status_timer_fired(self) -> None:
        self.status_timer = None
        self._send_status_when_allowed()

    def _submit(self, call: Call) -> None:
        call.in_flight = True
        left = call.time_left()
        if left is not None:
            # The attempt made at the deadline still gets one request timeout to answer.
            grace = (self.params.api_request_timeout or 0.0) if call.last_try else 0.0
            call.watchdog = self.deadlines.after(max(left, grace, 0.0), "request deadline",
                                                 lambda: self._on_watchdog(call))
        future = self.pool.submit(self.client.send, call.method, call.path, call.body)
        future.add_done_callback(lambda f: self._post(call, f.result()))

    def _post(self, call: Call, outcome: Outcome) -> None:
        """Runs on a worker thread: hand the outcome to the loop."""
        with self.lock:
            self.completed.append((call, outcome))
        try:
            os.write(self.wake_w, b"!")
        except BlockingIOError:
            pass  # the loop is already due to wake up

    def _drain(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            with self.lock:
                if not self.completed:
                    return
                call, outcome = self.completed.popleft()
            self._on_outcome(call, outcome)

    def _on_outcome(self, call: Call, outcome: Outcome) -> None:
        call.in_flight = False
        if call.watchdog is not None:
            call.watchdog.cancel()
        if call.closed:
            return
        call.last_status = outcome.status
        shown = outcome.status if outcome.status is not None else outcome.error
        self.log.debug(f"{call.method} {call.path} -> {shown}")
        self._report_attempt(call, outcome)
        p = self.params
        decision = decide(call.kind, outcome, retry_delay=p.api_retry_delay,
                          conflict_delay=p.api_task_execution_creation_conflict_retry_delay or 0)
        if decision.verdict is Verdict.DONE:
            call.closed = True
            call.on_done(outcome)
        elif decision.verdict is Verdict.CONFLICT:
            self._on_conflict(call, decision)
        elif decision.verdict is Verdict.RETRY:
            self._retry(call, decision)
        else:
            self._fail(call, decision)

    def _on_conflict(self, call: Call, decision: Decision) -> None:
        if not call.conflicted:
            call.conflicted = True
            timeout = self.params.api_task_execution_creation_conflict_timeout
            call.deadline = None if timeout is None else call.started + timeout
            self.log.warning("the server reports a concurrency conflict: another execution of "
                             "this Task is running")
        self._retry(call, decision)

    def _retry(self, call: Call, decision: Decision) -> None:
        left = call.time_left()
        if call.abandon_retries or (left is not None and left <= 0):
            why = decision.reason + ("" if call.abandon_retries else "; out of time to retry")
            self._fail(call, Decision(decision.verdict, reason=why),
                       exhausted=not call.abandon_retries)
            return
        delay = decision.delay if left is None else min(decision.delay, left)
        call.last_try = left is not None and delay >= left  # cut to end at the deadline
        self.log.info(f"{call.method} {call.path}: {decision.reason}; retrying in {delay:g} s")
        self.deadlines.after(delay, "retry", lambda: self._resubmit(call))

    def _resubmit(self, call: Call) -> None:
        if not call.closed:
            self._submit(call)

    def _fail(self, call: Call, decision: Decision, *, exhausted: bool = False) -> None:
        call.closed = True
        if exhausted:
            self.rollbar.report(f"Exhausted retry timeout for {call.method} {call.path}: "
                                f"{decision.reason}", self._request_data(call))
        call.on_fail(call, decision)

    def _report_attempt(self, call: Call, outcome: Outcome) -> None:
        """Rollbar hears of network errors and of answers a retry cannot fix (not of
        conflicts, stops or rate limiting, which are part of the protocol)."""
        if outcome.status is None:
            self.rollbar.report(f"API request failed: {outcome.error}",
                                self._request_data(call, error=outcome.error))
        elif outcome.status >= 400 and outcome.status not in (409, 429, 502, 503, 504):
            self.rollbar.report(f"Got error response code = {outcome.status}",
                                self._request_data(call, response=outcome))

    def _request_data(self, call: Call, *, error: str | None = None,
                      response: Outcome | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"request": {"url": self.client.base_url + call.path,
                                            "method": call.method, "body": call.body}}
        if error is not None:
            data["error"] = {"reason": error}
        if response is not None:
            data["response"] = {"status_code": response.status, "body": response.body}
        return data

    def _on_watchdog(self, call: Call) -> None:
        if call.in_flight and not call.closed:
            call.in_flight = False
            self._fail(call, Decision(Verdict.GIVE_UP, reason="no answer before the deadline"),
                       exhausted=True)

    # -- messages -----------------------------------------------------------------------------

    def handle(self, message: m.Message) -> None:
        if isinstance(message, m.Begin):
            self._begin(message)
        elif isinstance(message, m.AttemptStarted):
            if self.params.send_pid:
                self._update({"pid": message.pid})
        elif isinstance(message, m.AttemptEnded):
            if message.will_retry:
                fields = _attempt_fields(message)
                if self.seed.embedded:
                    fields.pop("exit_code", None)  # a function has no exit code
                self._update(fields)
        elif isinstance(message, m.StatusUpdate):
            self._status(message.fields)
        elif isinstance(message, m.Finish):
            self._finish(message)

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
        meta = self.metadata.get()
        body, notes = start_body(p, started_at=begin.started_at, command=list(p.command) or None,
                                 attach=bool(p.task_execution_uuid),
                                 log_level=logs.LEVEL_NAMES.get(self.log.level, "INFO"),
                                 hostname=meta.hostname or _hostname(),
                                 metadata=meta.execution, task_metadata=meta.task,
                                 input_value=self._input_value(begin),
                                 embedded=self.seed.embedded)
        for note in notes:
            self.log.info(note)
        if p.task_execution_uuid:
            method, path = "PATCH", f"{EXECUTIONS}{quote(p.task_execution_uuid)}/"
        else:
            method, path = "POST", EXECUTIONS
        self.start_call = Call(Kind.START, method, path, body,
                               timeout=p.api_task_execution_creation_error_timeout,
                               on_done=self._started, on_fail=self._start_failed)
        self._submit(self.start_call)

    def _input_value(self, begin: m.Begin) -> object:
        """The input value as sent (parsed in its format), with --send-input-value: the
        call's data in embedded mode, else the input text of wrapped mode."""
        p = self.params
        if not p.send_input_value:
            return None
        if begin.input_value is not None:
            return begin.input_value
        text = values.input_text(p, os.environ)
        if text is None:
            return None
        try:
            return values.parse(text, values.format_of(p.input_value_format, p.input_filename))
        except ValueError as e:
            self.log.warning(f"the input value is sent as text: {e}")
            return text

    def _started(self, outcome: Outcome) -> None:
        body = outcome.body if isinstance(outcome.body, dict) else {}
        uuid = self.params.task_execution_uuid or body.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            assert self.start_call is not None
            self._start_failed(self.start_call, Decision(
                Verdict.GIVE_UP, reason="the server's answer has no execution uuid"))
            return
        self.uuid = self.seed.execution_uuid = uuid
        self.log.execution_uuid = uuid
        self.log.info(f"Task Execution {uuid} started")
        self.reply(m.Permit(uuid))
        self._schedule_heartbeat()
        if self.pending_finish is not None:
            self._finish(self.pending_finish)

    def _start_failed(self, call: Call, decision: Decision) -> None:
        p = self.params
        if call.conflicted:
            self.reply(m.Deny(TEMPFAIL, "the Task is at its concurrency limit "
                                        f"({decision.reason})"))
        elif p.prevent_offline_execution:
            code = NOPERM if call.last_status == 403 else FAILURE
            self.reply(m.Deny(code, f"could not create the Task Execution ({decision.reason}) "
                                    "and offline execution is prevented"))
        else:
            self.log.warning(f"could not create the Task Execution ({decision.reason}); "
                             "the command runs unreported")
            self.reply(m.Permit(None))
        self.rollbar.report(f"Exited before API Server notified of start: {decision.reason}",
                            self._request_data(call))
        if self.pending_finish is not None:
            self.pending_finish = None
            self.reply(m.FinishDelivered(False, "the execution was never created"))

    # -- updates -------------------------------------------------------------------------------

    def _schedule_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        interval = self.params.api_heartbeat_interval
        if interval is not None and self.final_call is None:
            self.heartbeat = self.deadlines.after(interval, "heartbeat", self._beat)

    def _beat(self) -> None:
        self.heartbeat = None
        if self.update_call is None and not self.updates:
            self._update({})
        self._schedule_heartbeat()

    def _update(self, fields: dict[str, Any]) -> None:
        """Queue a RUNNING update; one is in flight at a time, in order."""
        if not self.uuid or self.final_call is not None or self.pending_finish is not None:
            return
        if self.resume_at is not None and time.monotonic() < self.resume_at:
            self.log.debug("skipping an update: retries ran out recently (--api-resume-delay)")
            return
        self.updates.append(fields)
        self._next_update()

    def _next_update(self) -> None:
        if self.update_call is not None or not self.updates:
            return
        fields = self.updates.popleft()
        sent = dict(self.pending)
        body = {"status": "RUNNING", **sent, **fields}
        path = f"{EXECUTIONS}{quote(self.uuid or '')}/?content=false"

        def done(outcome: Outcome) -> None:
            if sent:
                self.last_status_sent = time.monotonic()
            for key, value in sent.items():
                if self.pending.get(key) == value:
                    del self.pending[key]
            self.resume_at = None
            self._update_over()
            self._schedule_heartbeat()
            self._send_status_when_allowed()

        self.update_call = Call(Kind.UPDATE, "PATCH", path, body,
                                timeout=self.params.api_error_timeout, on_done=done,
                                on_fail=self._update_failed)
        self._submit(self.update_call)

    def _update_failed(self, call: Call, decision: Decision) -> None:
        if decision.verdict is Verdict.STOPPED:
            self.updates.clear()
            if self.heartbeat is not None:
                self.heartbeat.cancel()
            self.reply(m.StopRequested(decision.reason))
        else:
            delay = self.params.api_resume_delay
            self.log.error(f"an update could not be delivered ({decision.reason}); "
                           + ("updates stop" if delay is None else
                              f"updates resume in {delay:g} s"))
            self.resume_at = float("inf") if delay is None else time.monotonic() + delay
        self._update_over()

    def _update_over(self) -> None:
        self.update_call = None
        self._next_update()

    # -- the final report ---------------------------------------------------------------------

    def _finish(self, finish: m.Finish) -> None:
        if self.start_call is not None and not self.start_call.closed:
            self.pending_finish = finish  # the start request's answer decides what happens
            self.start_call.abandon_retries = True
            return
        self.pending_finish = None
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        self.updates.clear()
        if self.listener is not None:
            self.pending.update(receive_all(self.listener, self.parser))  # the last words
        if self.uuid:
            self._send_final(finish)
        elif self.sampled_out and _should_report_late(self.params, finish.status):
            self._send_late(finish)
        else:
            self.reply(m.FinishDelivered(False, "this run is not reported"))

    def _final_fields(self, finish: m.Finish) -> dict[str, Any]:
        body: dict[str, Any] = {**self.pending, "status": finish.status,
                                "finished_at": finish.finished_at, **finish.extra}
        if finish.exit_code is not None:
            body["exit_code"] = finish.exit_code
        if finish.failed_attempts:
            body["failed_attempts"] = finish.failed_attempts
        if finish.timed_out_attempts:
            body["timed_out_attempts"] = finish.timed_out_attempts
        if finish.stop_reason:
            body["stop_reason"] = finish.stop_reason
        if self.capture is not None:
            body.update(self.capture.tails(_tail_lines(self.params, finish.status)))
        if self.params.send_runtime_metadata:
            body.update(execution_metadata(self.params, self.metadata.get().execution))
        return body

    def _final_timeout(self, finish: m.Finish) -> float | None:
        timeout = self.params.api_final_update_timeout
        if finish.shutdown:
            cap = self.params.shutdown_report_timeout
            timeout = cap if timeout is None else min(timeout, cap)
        return timeout

    def _send_final(self, finish: m.Finish) -> None:
        path = f"{EXECUTIONS}{quote(self.uuid or '')}/?content=false"
        self.final_call = Call(Kind.FINAL, "PATCH", path, self._final_fields(finish),
                               timeout=self._final_timeout(finish), on_done=self._final_done,
                               on_fail=self._final_failed)
        self._submit(self.final_call)

    def _send_late(self, finish: m.Finish) -> None:
        """A sampled-out run that did not succeed is reported after all, in one request."""
        meta = self.metadata.get()
        body, _ = start_body(self.params, started_at=finish.finished_at,
                             command=list(self.params.command) or None, attach=False,
                             log_level=logs.LEVEL_NAMES.get(self.log.level, "INFO"),
                             hostname=meta.hostname or _hostname(), metadata=meta.execution,
                             task_metadata=meta.task, embedded=self.seed.embedded)
        body.update(self._final_fields(finish))
        self.final_call = Call(Kind.FINAL, "POST", EXECUTIONS, body,
                               timeout=self._final_timeout(finish), on_done=self._final_done,
                               on_fail=self._final_failed)
        self._submit(self.final_call)

    def final_pending(self) -> bool:
        call = self.final_call
        return self.pending_finish is not None or (call is not None and not call.closed)

    def _final_done(self, outcome: Outcome) -> None:
        self.log.debug("the final status was delivered")
        self.reply(m.FinishDelivered(True))

    def _final_failed(self, call: Call, decision: Decision) -> None:
        if call.last_status == 409:  # e.g. after a stop on the server: it keeps its status
            self.log.info(f"the server kept its own final status ({decision.reason})")
            self.reply(m.FinishDelivered(False, decision.reason))
            return
        self.log.error(f"the final status could not be delivered: {decision.reason}")
        self.rollbar.report(f"API Server not responding properly: the final status could not "
                            f"be delivered ({decision.reason})", self._request_data(call))
        self.reply(m.FinishDelivered(False, decision.reason))


def _tail_lines(p: Any, status: str) -> int:
    if status == "SUCCEEDED":
        return int(p.num_log_lines_sent_on_success)
    if status == "FAILED":
        return int(p.num_log_lines_sent_on_failure)
    return int(p.num_log_lines_sent_on_timeout)


def _attempt_fields(ended: m.AttemptEnded) -> dict[str, Any]:
    if ended.timed_out:
        return {"timed_out_attempts": ended.timed_out_attempts}
    return {"exit_code": ended.exit_code, "failed_attempts": ended.failed_attempts}


def _should_report_late(p: Any, status: str) -> bool:
    if status == "SUCCEEDED":
        return False
    probability = (p.api_timeout_report_probability if status == "TERMINATED_AFTER_TIME_OUT"
                   else p.api_failure_report_probability)
    return bool(random.random() < probability)


def _hostname() -> str:
    import socket

    return socket.gethostname()
