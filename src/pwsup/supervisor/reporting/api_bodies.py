"""What the API sink sends: the start body and the final report's fields, from the run.

The pure encodings live in `pwsup.api.body`; this module gathers what they are made of in
the reporter — runtime metadata, the host name, the input value, the log tails — so the
start request and a late report of a sampled-out run build their body the same way.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pwsup.api.body import execution_metadata, start_body
from pwsup.config import values
from pwsup.util import log as logs

if TYPE_CHECKING:
    from pwsup.config.params import Params
    from pwsup.ipc import messages as m
    from pwsup.runtime import MetadataCache
    from pwsup.supervisor.reporting.log_capture import LogCapture
    from pwsup.supervisor.seed import ReporterSeed
    from pwsup.util.log import Log


class ReportBodies:
    """Builds request bodies from the run's params, metadata and captured output."""

    def __init__(self, seed: ReporterSeed, log: Log, metadata: MetadataCache,
                 capture: LogCapture | None) -> None:
        self.params = seed.params
        self.embedded = seed.embedded
        self.log = log
        self.metadata = metadata
        self.capture = capture

    def start(self, started_at: str, *, attach: bool,
              begin: m.Begin | None = None) -> tuple[dict[str, Any], list[str]]:
        """The body creating (or, with `attach`, joining) the execution, and notes to log.
        A `begin` message brings the input value to send (--send-input-value)."""
        p = self.params
        meta = self.metadata.get()
        return start_body(p, started_at=started_at, command=list(p.command) or None,
                          attach=attach, log_level=logs.LEVEL_NAMES.get(self.log.level, "INFO"),
                          hostname=meta.hostname or _hostname(), metadata=meta.execution,
                          task_metadata=meta.task,
                          input_value=None if begin is None else self._input_value(begin),
                          embedded=self.embedded)

    def final(self, finish: m.Finish, pending: dict[str, Any],
              ended: m.AttemptEnded | None = None) -> dict[str, Any]:
        """The final report's fields: the status values not yet delivered, the outcome,
        what the attempts cost (`ended`, the last attempt's end), the log tails and (when
        asked) fresh runtime metadata."""
        body: dict[str, Any] = {k: v for k, v in pending.items() if k not in _OUTCOME}
        if ended is not None:
            add_usage(body, ended)
        body.update({"status": finish.status,
                     "finished_at": finish.finished_at, **finish.extra})
        if finish.exit_code is not None:
            body["exit_code"] = finish.exit_code
        if finish.failed_attempts:
            body["failed_attempts"] = finish.failed_attempts
        if finish.timed_out_attempts:
            body["timed_out_attempts"] = finish.timed_out_attempts
        if finish.stop_reason:
            body["stop_reason"] = finish.stop_reason
        if self.capture is not None:
            tails = self.capture.tails(_tail_lines(self.params, finish.status))
            # PostgreSQL text cannot hold NUL: one in the output would cost the report.
            body.update({k: v.replace("\0", "\ufffd") for k, v in tails.items()})
        if self.params.send_runtime_metadata:
            body.update(execution_metadata(self.params, self.metadata.get().execution))
        return body

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


_OUTCOME = frozenset({"status", "finished_at", "exit_code", "failed_attempts",
                      "timed_out_attempts", "stop_reason", "output_value"})
"""The final report's own fields: status values never stand in for them."""


def attempt_fields(ended: m.AttemptEnded, *, embedded: bool) -> dict[str, Any]:
    """What a failed attempt that will be retried adds to a RUNNING update."""
    fields: dict[str, Any]
    if ended.timed_out:
        fields = {"timed_out_attempts": ended.timed_out_attempts}
    elif embedded:
        fields = {"failed_attempts": ended.failed_attempts}  # a function has no exit code
    else:
        fields = {"exit_code": ended.exit_code, "failed_attempts": ended.failed_attempts}
    add_usage(fields, ended)
    return fields


USAGE_KEY = "pwsup_usage"
"""The key of `other_runtime_metadata` that carries what the attempts cost: the protocol
has no field of its own for CPU seconds or a peak RSS in bytes (the server's
`max_memory_mb` and `*_cpu_units` are container figures it fills itself)."""
MIB = 1024 * 1024


def add_usage(body: dict[str, Any], ended: m.AttemptEnded) -> None:
    """Put what the attempt cost (and, with --memory-limit, why it was ended) in `body`'s
    `other_runtime_metadata` (which the server merges into the stored value), beside the
    command's own keys; a memory limit's verdict is also the `last_status_message`."""
    if ended.usage is None and ended.memory_exceeded is None:
        return
    figures: dict[str, Any] = {"attempt": ended.attempt, **(ended.usage or {})}
    if ended.total_usage is not None:
        figures["all_attempts"] = dict(ended.total_usage)
    exceeded = ended.memory_exceeded
    if exceeded is not None:
        figures["memory_limit_exceeded"] = dict(exceeded)
        body["last_status_message"] = memory_message(
            exceeded["rss_bytes"], exceeded["limit_bytes"], ended.attempt)
    metadata = body.get("other_runtime_metadata")
    body["other_runtime_metadata"] = {**(metadata if isinstance(metadata, dict) else {}),
                                      USAGE_KEY: figures}


def memory_message(rss: int, limit: int, attempt: int) -> str:
    return (f"memory limit exceeded: attempt {attempt} used {rss / MIB:.1f} MiB resident, "
            f"over the limit of {limit / MIB:.1f} MiB")


def _tail_lines(p: Params, status: str) -> int:
    if status == "SUCCEEDED":
        return int(p.num_log_lines_sent_on_success)
    if status == "FAILED":
        return int(p.num_log_lines_sent_on_failure)
    return int(p.num_log_lines_sent_on_timeout)


def _hostname() -> str:
    import socket

    return socket.gethostname()
