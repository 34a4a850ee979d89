"""Reporting embedded runs: the same reporter process as wrapped mode, driven by calls.

```
 caller (your process)                          reporter (forked once, reused)
 ─────────────────────                          ──────────────────────────────
 monitor.begin()   ──Begin──────────────────▶   POST /task_executions/
                   ◀─Permit(uuid) | Deny────
 (the function runs; the reporter heartbeats on its own schedule)
 monitor.status()  ──StatusUpdate───────────▶   at once if due, else with the next update
 monitor.finish()  ──Finish(output_value)───▶   PATCH final status
                   ◀─FinishDelivered────────
```

The reporter is forked on the first reported call and kept for later ones with the same
settings (an AWS Lambda container serves many invocations), so the caller pays for
importing requests and friends once, in another process. It watches the caller: when the
caller's process exits, the pipe's EOF ends the reporter too.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

from pwsup.errors import PwsupError
from pwsup.ipc import messages as m
from pwsup.supervisor import procs
from pwsup.supervisor.link import ReporterLink
from pwsup.supervisor.seed import ReporterSeed
from pwsup.util.timefmt import utc_now
from pwsup.util.waiting import wait

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.config.params import Params
    from pwsup.util.log import Log

_current: EmbeddedMonitor | None = None


class Denied(PwsupError, RuntimeError):
    """The server refused to start the run: the Task at its concurrency limit, the
    execution to attach to already finished or stopped, the key refused, ..."""

    def __init__(self, exit_code: int, reason: str) -> None:
        super().__init__(f"the run was not started: {reason} (exit code {exit_code})")
        self.exit_code = exit_code


class EmbeddedMonitor:
    """The caller's end of an embedded-mode reporter."""

    def __init__(self, params: Params, log: Log, lambda_context: object = None,
                 environ: Mapping[str, str] | None = None) -> None:
        seed = ReporterSeed(params, f"pwsup reporter: {params.display_name}")
        seed.embedded = True
        seed.lambda_context = lambda_context
        seed.environ = None if environ is None else dict(environ)
        self.params = params
        self.log = log
        self.link = ReporterLink(seed, log)
        self.link.start(close_fds=())

    @classmethod
    def for_params(cls, params: Params, log: Log, lambda_context: object = None,
                   environ: Mapping[str, str] | None = None) -> EmbeddedMonitor:
        """The running monitor if its settings and environment match, else a new one (the
        old one ends). `environ`: the call's environment, when not the process's."""
        global _current
        current = _current
        wanted = None if environ is None else dict(environ)
        if (current is not None and current.params == params and current.alive
                and current.link.seed.environ == wanted):
            current.link.seed.lambda_context = lambda_context
            return current
        if current is not None:
            current.close()
        _current = cls(params, log, lambda_context, environ)
        return _current

    @property
    def alive(self) -> bool:
        channel = self.link.channel
        return channel is not None and not channel.eof

    def begin(self, input_value: object = None) -> str | None:
        """Create the execution; its uuid, or None when the run goes unreported."""
        self.link.seed.finish = None
        self.link.seed.execution_uuid = None
        self.link.begin(utc_now(), input_value)
        reply = self._wait_for((m.Permit, m.Deny), self._start_wait())
        if isinstance(reply, m.Deny):
            raise Denied(reply.exit_code, reply.reason)
        if isinstance(reply, m.Permit):
            self.link.permitted(reply.execution_uuid)
            return reply.execution_uuid
        self.log.warning("the reporter did not answer; the call runs unreported")
        return None

    def status(self, fields: dict[str, Any]) -> None:
        self.link.send(m.StatusUpdate(fields))

    def attempt_failed(self, failed_attempts: int) -> None:
        self.link.send(m.AttemptEnded(attempt=failed_attempts, exit_code=1, timed_out=False,
                                      failed_attempts=failed_attempts, timed_out_attempts=0,
                                      will_retry=True))

    def finish(self, status: str, *, failed_attempts: int = 0,
               extra: dict[str, Any] | None = None) -> bool:
        """Send the final status; True once the server has it."""
        self.link.finish(m.Finish(status=status, exit_code=None, failed_attempts=failed_attempts,
                                  timed_out_attempts=0, finished_at=utc_now(),
                                  extra=extra or {}))
        reply = self._wait_for((m.FinishDelivered,), self._finish_wait())
        return isinstance(reply, m.FinishDelivered) and reply.delivered

    def _finish_wait(self) -> float | None:
        """How long the final report may take: waiting for an update on the wire (one
        request timeout at most), then its own tries (the final update timeout), and a
        margin; None when either has no limit."""
        p = self.params
        if p.api_final_update_timeout is None or p.api_request_timeout is None:
            return None
        return p.api_request_timeout + p.api_final_update_timeout + 2

    def close(self, timeout: float = 2.0) -> None:
        """Let the reporter go (its pipe's EOF), and reap it: no zombie in the caller."""
        self.link.lost()
        pid = self.link.pid
        if pid is None:
            return
        fd = procs.pidfd_open(pid)
        if fd is not None:
            try:
                if not wait([fd], timeout=timeout)[0]:
                    procs.send_signal(pid, signal.SIGKILL, group=False)
            finally:
                procs.close_quietly(fd)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # reaped by someone else (the caller's own SIGCHLD handling)

    def _start_wait(self) -> float | None:
        p = self.params
        parts = (p.api_task_execution_creation_error_timeout,
                 p.api_task_execution_creation_conflict_timeout)
        if any(part is None for part in parts):
            return None
        return sum(part or 0.0 for part in parts) + 10.0

    def _wait_for(self, kinds: tuple[type, ...], timeout: float | None) -> m.Message | None:
        """Block until a message of one of `kinds` arrives (others are ignored)."""
        channel = self.link.channel
        deadline = None if timeout is None else time.monotonic() + timeout
        while channel is not None and not channel.eof:
            channel.flush()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            writers = [channel.write_fd] if channel.pending_output else []
            readable, _ = wait([channel.read_fd], writers, left)
            if readable:
                for message in channel.receive(self.log.warning):
                    if isinstance(message, kinds):
                        return message
        return None
