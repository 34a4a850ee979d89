"""The reporter process: everything that talks to the outside world, away from the parent.

```
   parent ──messages──▶ ┌───────────── reporter ─────────────┐
          ◀──replies─── │ loop: poll(parent pipe, wake pipe, │ ──HTTP──▶ API server
                        │ sink fds) + deadlines              │
                        │ sink: offline (NullSink) or API    │ ◀──UDP─── the command's
                        └────────────────────────────────────┘           status updates
```

It is forked from the parent at start (always, also offline) and again if it dies, so it
inherits the `Params` and the run's state (`seed.ReporterSeed`) without any of it crossing
the pipe. It imports whatever it needs (requests, ...) after the fork: the parent never does.

It watches the parent: EOF on the pipe before a `Finish` means the parent died (even by
SIGKILL), and the reporter then terminates the command's process group and every process
carrying the run's cookie itself — SIGTERM, the grace period, SIGKILL — so a dead
supervisor leaves neither its command nor the daemons the command started running. Offline
(outside ECS sidecar mode) that is all there is to do, and the parent forks the lean
`watchdog` loop instead of this one; an offline parent that is done simply kills it.

It ignores the job-control and termination signals a process group receives together
(a Ctrl-C, `kill -TERM -<pgid>`): the parent decides when the run ends, and the reporter
must survive long enough to deliver the final report.
"""

from __future__ import annotations

import os
import select
from typing import TYPE_CHECKING, NoReturn

from pwsup.ipc import messages as m
from pwsup.supervisor.deadlines import Deadlines
from pwsup.supervisor.reporting.sink import Sink
from pwsup.supervisor.watchdog import end_orphaned_run, settle
from pwsup.util.log import make_handler
from pwsup.util.timefmt import utc_now

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.ipc.channel import Channel
    from pwsup.supervisor.seed import ReporterSeed
    from pwsup.util.log import Log

    Replies = Callable[[m.Message], None]


class Reporter:
    """The reporter's event loop."""

    def __init__(self, seed: ReporterSeed, channel: Channel, log: Log) -> None:
        self.seed = seed
        self.channel = channel
        self.log = log
        self.deadlines = Deadlines()
        self.finished = False
        self.sink = make_sink(seed, self.channel.send, log, self.deadlines)
        if seed.params.sidecar_container_mode:
            self._watch_main_container()

    def _watch_main_container(self) -> None:
        """ECS sidecar mode: the run is the main container; poll the task metadata for its
        exit code every --process-check-interval (proc_wrapper waited forever unless a
        refresh interval happened to be set)."""
        from pwsup.runtime import MetadataCache

        cache = MetadataCache(self.seed.params, os.environ)
        interval = self.seed.params.process_check_interval

        def poll() -> None:
            code = cache.refresh(force=True).main_container_exit_code
            if code is None:
                self.deadlines.after(interval, "main container", poll)
            else:
                self.log.info(f"the main container exited with code {code}")
                self.channel.send(m.MainContainerExited(code))

        self.deadlines.after(0.0, "main container", poll)

    def run(self) -> NoReturn:
        try:
            while not self.channel.eof:
                self._poll_once()
            orphaned = not self.finished
            if orphaned:
                end_orphaned_run(self.seed, self.log)
                self._report_orphaned_run()
            # The parent is gone (a parent that stops waiting kills us instead): the final
            # status in hand is still delivered, within its own deadline.
            while self.sink.final_pending():
                self._poll_once()
            self._exit(1 if orphaned else 0)
        except BaseException as e:
            self.log.error(f"reporter failed: {e!r}")
            self._exit(70)

    def _poll_once(self) -> None:
        poller = select.poll()
        handlers = dict(self.sink.fds())
        if not self.channel.eof:
            poller.register(self.channel.read_fd, select.POLLIN)
        if self.channel.pending_output:
            poller.register(self.channel.write_fd, select.POLLOUT)
        for fd in handlers:
            poller.register(fd, select.POLLIN)
        timeout = self.deadlines.next_timeout()
        ready = poller.poll(None if timeout is None else max(1, int(timeout * 1000) + 1))
        for fd, _events in ready:
            if fd == self.channel.read_fd:
                self._receive()
            elif fd == self.channel.write_fd:
                self.channel.flush()
            elif fd in handlers:
                handlers[fd]()
        self.deadlines.fire_due()

    def _receive(self) -> None:
        for message in self.channel.receive(lambda why: self.log.error(f"bad message: {why}")):
            if isinstance(message, m.AttemptStarted):
                self.seed.pgid, self.seed.group_signals = message.pgid, message.group_signals
                self.seed.attempt = (message.attempt, message.pid)
            elif isinstance(message, m.AttemptEnded):
                self.seed.pgid = self.seed.attempt = None
            elif isinstance(message, m.Finish):
                self.finished = True
            elif isinstance(message, m.Begin) and self.finished:
                self._next_run()
            self.sink.handle(message)

    def _next_run(self) -> None:
        """Embedded mode: the next call is a new run with a fresh sink."""
        self.sink.close()
        self.finished = False
        self.seed.execution_uuid = self.seed.pgid = self.seed.attempt = None
        self.seed.finish = None
        self.deadlines = Deadlines()
        self.sink = make_sink(self.seed, self.channel.send, self.log, self.deadlines)

    def _report_orphaned_run(self) -> None:
        """Tell the server the run ended with its supervisor (ABORTED), briefly."""
        self.finished = True
        self.sink.handle(m.Finish(status="ABORTED", exit_code=None, failed_attempts=0,
                                  timed_out_attempts=0, finished_at=utc_now(), shutdown=True))

    def _exit(self, code: int) -> NoReturn:
        try:
            self.sink.close()
            self.channel.flush()
        finally:
            os._exit(code)


def make_sink(seed: ReporterSeed, reply: Replies, log: Log, deadlines: Deadlines) -> Sink:
    """The API sink when the run is reported, else the offline one."""
    if seed.params.online:
        from pwsup.supervisor.reporting.api_sink import ApiSink

        return ApiSink(seed, reply, log, deadlines)
    return Sink(seed, reply, log, deadlines)


def reporter_main(seed: ReporterSeed, channel: Channel, log: Log) -> NoReturn:
    """Entry point in the freshly forked reporter (`forking.fork` has dropped the parent's
    handlers and descriptors; every signal is still blocked)."""
    try:
        settle(seed, log, "reporter")
        _route_library_logs(log)
        from pwsup.api.deferred import defer_unused_imports

        defer_unused_imports()
    except BaseException as e:
        log.error(f"reporter could not start: {e!r}")
        os._exit(70)
    Reporter(seed, channel, log).run()


def _route_library_logs(log: Log) -> None:
    """Libraries (requests, urllib3, boto3) log through `logging`: same format, same
    redaction as pwsup's own lines."""
    import logging

    root = logging.getLogger()
    root.handlers[:] = [make_handler(log)]
    root.setLevel(log.level)


