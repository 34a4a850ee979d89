"""The parent: one event loop that spawns, signals, reaps and decides — and nothing else.

```
 poll ─┬─ signal wakeup pipe ─▶ SIGCHLD: reap · HUP INT QUIT USR1 USR2 WINCH TERM: forward
       │                        (TERM/INT/QUIT also stop the run: grace, then SIGKILL)
       ├─ command's pidfd ────▶ reap → clean up what it left → retry, or finish
       ├─ straggler pidfds ───▶ re-check what is left
       ├─ reporter pipe ──────▶ Permit · Deny · StopRequested · FinishDelivered · EOF
       └─ deadlines ──────────▶ time limit · SIGKILL escalation · retry · reporter restart
```

The one rule: nothing here waits on the outside world. No HTTP, DNS or AWS code is even
imported (a test checks `sys.modules`); the reporter does all of that. Every timed action
is a deadline on the monotonic clock, so a signal or an exit is acted on the moment it
arrives whatever else is pending.

Phases (`Phase`), and what moves between them:

    STARTING ──permit──▶ RUNNING ──command exits──▶ CLEANING ──nothing left──┬─▶ WAITING ─▶ RUNNING
        │                                                                     └─▶ REPORTING ─▶ DONE
        └──deny / stop signal──────────────────────────────────────────────────▶ REPORTING
"""

from __future__ import annotations

import enum
import os
import select
import signal
import time

from pwsup import exitcodes
from pwsup.config import childenv, values
from pwsup.supervisor import procs
from pwsup.supervisor.child import SpawnError, SpawnRequest, spawn
from pwsup.supervisor.deadlines import Deadline, Deadlines
from pwsup.supervisor.link import ReporterLink
from pwsup.supervisor.seed import ReporterSeed
from pwsup.supervisor.signals import STOPPING, SignalSetup, signal_name
from pwsup.util import files
from pwsup.util.log import DEBUG
from pwsup.util.timefmt import utc_now

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pwsup.config.params import Params
    from pwsup.ipc import messages as m
    from pwsup.supervisor.resolver import ResolverProcess
    from pwsup.util.log import Log

REPORTER_EXIT_GRACE = 2.0
"""After the final report is done, how long the reporter may take to exit before SIGKILL."""
STRAGGLER_RECHECK = 0.1
"""Re-check interval for leftover processes where pidfds are unavailable (old kernels)."""


class Phase(enum.Enum):
    STARTING = "waiting for the server's permission to start"
    RUNNING = "running the command"
    CLEANING = "terminating what the command left behind"
    WAITING = "waiting to retry"
    REPORTING = "delivering the final report"
    DONE = "done"


class Status(str, enum.Enum):
    """Final statuses, as the CloudReactor API names them."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TERMINATED_AFTER_TIME_OUT = "TERMINATED_AFTER_TIME_OUT"
    ABORTED = "ABORTED"


class Attempt:
    """One run of the command. `pid` is 0 when it could not be started."""

    __slots__ = ("escalation", "exit_code", "number", "pid", "pidfd", "timed_out", "timeout")

    def __init__(self, number: int, pid: int, *, pidfd: int | None = None,
                 exit_code: int | None = None) -> None:
        self.number = number
        self.pid = pid
        self.pidfd = pidfd
        self.exit_code = exit_code
        self.timed_out = False
        self.timeout: Deadline | None = None
        self.escalation: Deadline | None = None

    @property
    def running(self) -> bool:
        return self.pid > 0 and self.exit_code is None


class Refresh:
    """How to resolve secrets again before a retry once --config-ttl has passed."""

    def __init__(self, source: Mapping[str, str], resolved_at: float,
                 written: list[str]) -> None:
        self.source = source
        """The environment pwsup was given (resolution starts from it every time)."""
        self.resolved_at = resolved_at
        self.written = written
        """Output files written by resolvers, removed at exit."""


class Supervisor:
    """Runs one wrapped command to completion. `run()` returns pwsup's exit code."""

    def __init__(self, params: Params, argv: Sequence[str], log: Log,
                 environ: Mapping[str, str], refresh: Refresh | None = None) -> None:
        self.params = params
        self.refresh = refresh
        self.resolving: ResolverProcess | None = None
        self.retry_due = False
        self.argv = list(argv)
        self.log = log
        self.environ = environ
        self.phase = Phase.STARTING
        self.deadlines = Deadlines()
        self.signals = SignalSetup()
        self.reporter = ReporterLink(
            ReporterSeed(params, f"pwsup reporter: {params.display_name}"), log)
        self.attempt: Attempt | None = None
        self.attempts = 0
        self.failed_attempts = 0
        self.timed_out_attempts = 0
        self.stop_signal: int | None = None
        self.server_stop: str | None = None
        self.exit_code = exitcodes.FAILURE
        self.execution_uuid: str | None = None
        self.started = time.monotonic()
        self.tty: int | None = None
        self.stragglers: dict[int, int] = {}  # pidfd -> pid
        self.signalled_stragglers: set[int] = set()
        self.straggler_kill: Deadline | None = None
        self.straggler_recheck: Deadline | None = None
        self.retry: Deadline | None = None
        self.report_cap: Deadline | None = None
        self.reporter_exited = False
        self.reporter_released = False
        self.output: tuple[int, int] | None = None
        """Write ends of the capture pipes handed to each attempt as stdout and stderr."""
        self.input = values.input_text(params, environ)
        self.input_file: str | None = None

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self._setup()
            while self.phase is not Phase.DONE:
                self._poll_once()
        finally:
            self._take_terminal_back()
            self._remove_input_file()
        return self.exit_code

    def _write_input_file(self) -> None:
        path = self.params.input_filename
        if path and self.input is not None:
            files.write_private(path, self.input)
            self.input_file = path

    def _remove_input_file(self) -> None:
        cleanup = self.params.cleanup_input_file
        if cleanup or (cleanup is None and self.input_file):
            files.remove_quietly(self.params.input_filename)

    def _setup(self) -> None:
        try:
            self._write_input_file()
        except OSError as e:
            self.log.error(f"cannot write the input file {self.params.input_filename!r}: "
                           f"{e.strerror}; nothing was started")
            self.exit_code, self.phase = exitcodes.CONFIG, Phase.DONE
            return
        try:
            self._set_up_process()
        except OSError as e:  # out of file descriptors or processes: say so, start nothing
            self.log.error(f"pwsup could not set itself up: {e.strerror or e}; "
                           "nothing was started")
            self._abandon(exitcodes.OS_ERROR)

    def _abandon(self, exit_code: int) -> None:
        """End the run now: nothing of it may keep running."""
        attempt = self.attempt
        if attempt is not None and attempt.running:
            self._signal_command(attempt, signal.SIGKILL)
        self.reporter.kill()
        self.exit_code, self.phase = exit_code, Phase.DONE

    def _set_up_process(self) -> None:
        self.signals.install()
        if not procs.become_subreaper():
            self.log.debug("could not become a child subreaper; orphans go to init")
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            self.tty = 0
        if self.params.log_capture_lines:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.reporter.seed.capture = (out_r, err_r)
            self.output = (out_w, err_w)
        if self.params.online:
            self._start_reporter()
            self.reporter.begin(utc_now())
        else:
            # Nothing to ask permission for: start the command first, then the reporter,
            # which learns the command's group from the seed (no message needed). Its pipes
            # are made first, so running out of descriptors cannot strand a started command.
            self.reporter.prepare()
            self._start_attempt()
            self._start_reporter()

    def _poll_once(self) -> None:
        poller = select.poll()
        handlers: dict[int, Callable[[], None]] = {self.signals.wakeup_fd: self._on_signals}
        if self.attempt is not None and self.attempt.pidfd is not None:
            handlers[self.attempt.pidfd] = self._reap
        channel = self.reporter.channel
        if channel is not None:
            handlers[channel.read_fd] = self._on_reporter_readable
            if channel.pending_output:
                poller.register(channel.write_fd, select.POLLOUT)
        for fd in self.stragglers:
            handlers[fd] = lambda fd=fd: self._on_straggler_exit(fd)  # type: ignore[misc]
        if self.resolving is not None:
            handlers[self.resolving.fd] = self._on_resolver_readable
        for fd in handlers:
            poller.register(fd, select.POLLIN)
        timeout = self.deadlines.next_timeout()
        ready = poller.poll(None if timeout is None else int(timeout * 1000) + 1)
        for fd, _events in ready:
            if fd in handlers:
                handlers[fd]()
            elif channel is not None and fd == channel.write_fd:
                channel.flush()
        self.deadlines.fire_due()

    # -- signals and reaping --------------------------------------------------------------

    def _on_signals(self) -> None:
        for signum in self.signals.drain():
            if signum == signal.SIGCHLD:
                self._reap()
            else:
                self._on_forwardable(signum)

    def _on_forwardable(self, signum: int) -> None:
        attempt = self.attempt
        if attempt is not None and attempt.running:
            self._signal_command(attempt, signum)  # first: this is the latency that counts
            if self.log.enabled(DEBUG):
                self.log.debug(f"forwarded {signal_name(signum)} to the command")
        if signum in STOPPING:
            self._stop(signum)

    def _reap(self) -> None:
        while (reaped := procs.reap_any()) is not None:
            pid, status = reaped
            if self.attempt is not None and pid == self.attempt.pid:
                self._on_command_exit(exitcodes.from_wait_status(status))
            elif pid == self.reporter.pid:
                self._on_reporter_reaped(status)
            else:
                code = exitcodes.from_wait_status(status)
                self.log.debug(f"reaped orphan {pid} ({exitcodes.describe(code)})")
        if self.stragglers or self.straggler_kill is not None:
            self._sweep_stragglers()

    def _signal_command(self, attempt: Attempt, signum: int) -> None:
        procs.send_signal(attempt.pid, signum, group=self.params.process_group_termination)

    # -- attempts -------------------------------------------------------------------------

    def _start_attempt(self) -> None:
        self.retry = None
        self.attempts += 1
        number = self.attempts
        if self.params.sidecar_container_mode:
            self.phase = Phase.RUNNING  # the reporter watches the main container for us
            self.log.info("ECS sidecar mode: waiting for the main container to exit")
            return
        env = childenv.build(self.params, self.environ, execution_uuid=self.execution_uuid)
        if self.input is not None:
            env[values.input_variable(self.params)] = self.input
        request = SpawnRequest(argv=self.argv, env=env, cwd=self.params.work_dir,
                               foreground_tty=self.tty, death_signal=signal.SIGTERM,
                               output=self.output)
        self.phase = Phase.RUNNING
        try:
            pid = spawn(request, self.signals)
        except OSError as e:  # pwsup's own resources (pipes, fork), not the command's fault
            self.log.error(f"could not start the command: {e.strerror or e}")
            self._abandon(exitcodes.OS_ERROR)
            return
        except SpawnError as e:
            self.log.error(f"could not start the command: {e}")
            self.attempt = Attempt(number, pid=0, exit_code=e.exit_code)
            self._attempt_over()
            return
        attempt = self.attempt = Attempt(number, pid, pidfd=procs.pidfd_open(pid))
        self.log.debug(f"attempt {number} started: pid {pid}")
        limit = self.params.attempt_timeout
        if limit is not None:
            attempt.timeout = self.deadlines.after(limit, "time limit", self._on_time_limit)
        self.reporter.attempt_started(number, pid)

    def _on_time_limit(self) -> None:
        attempt = self.attempt
        if attempt is None or not attempt.running:
            return
        attempt.timed_out = True
        self.log.warning(f"attempt {attempt.number} exceeded its time limit of "
                         f"{self.params.process_timeout:g} s: sending SIGTERM")
        self._signal_command(attempt, signal.SIGTERM)
        self._arm_escalation(attempt)

    def _arm_escalation(self, attempt: Attempt) -> None:
        if attempt.escalation is None:
            attempt.escalation = self.deadlines.after(
                self.params.process_termination_grace_period, "SIGKILL escalation",
                lambda: self._escalate(attempt))

    def _escalate(self, attempt: Attempt) -> None:
        if attempt.running:
            self.log.warning(f"the command did not exit within the grace period of "
                             f"{self.params.process_termination_grace_period:g} s: sending SIGKILL")
            self._signal_command(attempt, signal.SIGKILL)

    def _on_command_exit(self, exit_code: int) -> None:
        attempt = self.attempt
        assert attempt is not None, "only a running attempt exits"
        assert attempt.running, "only a running attempt exits"
        attempt.exit_code = exit_code
        procs.close_quietly(attempt.pidfd)
        attempt.pidfd = None
        for deadline in (attempt.timeout, attempt.escalation):
            if deadline is not None:
                deadline.cancel()
        self._take_terminal_back()
        if self.log.enabled(DEBUG):
            self.log.debug(f"attempt {attempt.number} ended: {exitcodes.describe(exit_code)}")
        if not self.params.online and self._run_is_over(attempt):
            self.reporter.kill()  # nothing to deliver: its teardown overlaps with ours
        self.phase = Phase.CLEANING
        self._sweep_stragglers()

    def _run_is_over(self, attempt: Attempt) -> bool:
        """Whether this attempt's end is the end of the run (no retry can follow)."""
        if self.stop_signal is not None or self.server_stop is not None:
            return True
        succeeded = attempt.exit_code == 0 and not attempt.timed_out
        return succeeded or not self._attempts_left()

    def _attempt_over(self) -> None:
        attempt = self.attempt
        assert attempt is not None
        assert attempt.exit_code is not None
        code = attempt.exit_code
        if self.stop_signal is not None:
            self._finish(Status.ABORTED, code)
            return
        if self.server_stop is not None:
            self._finish(Status.ABORTED, exitcodes.TEMPFAIL)
            return
        if attempt.timed_out:
            self.timed_out_attempts += 1
        elif code != 0:
            self.failed_attempts += 1
        if code == 0 and not attempt.timed_out:
            self._finish(Status.SUCCEEDED, 0)
        elif self._attempts_left():
            self._schedule_retry(attempt, code)
        elif attempt.timed_out:
            self._finish(Status.TERMINATED_AFTER_TIME_OUT, exitcodes.TIMED_OUT)
        else:
            self._finish(Status.FAILED, code)

    def _attempts_left(self) -> bool:
        if self.params.sidecar_container_mode:
            return False
        limit = self.params.max_attempts
        return limit is None or self.attempts < limit

    def _schedule_retry(self, attempt: Attempt, code: int) -> None:
        delay = self.params.process_retry_delay
        what = "timed out" if attempt.timed_out else f"failed ({exitcodes.describe(code)})"
        self.log.warning(f"attempt {attempt.number} {what}; retrying in {delay:g} s")
        self.reporter.attempt_ended(self._attempt_ended(attempt, will_retry=True))
        self.phase = Phase.WAITING
        self.retry = self.deadlines.after(delay, "retry", self._retry_now)

    # -- secrets refresh before a retry ----------------------------------------------------

    def _refresh_if_stale(self) -> None:
        ttl, refresh = self.params.config_ttl, self.refresh
        if ttl is None or refresh is None or time.monotonic() - refresh.resolved_at < ttl:
            return
        from pwsup.supervisor.resolver import ResolverProcess

        self.log.info("the secrets are older than --config-ttl: resolving them again")
        self.resolving = ResolverProcess(self.params, refresh.source)

    def _retry_now(self) -> None:
        if self.resolving is None:
            self._refresh_if_stale()
        if self.resolving is not None:
            self.retry_due = True  # start once the fresh secrets are in
        else:
            self._start_attempt()

    def _on_resolver_readable(self) -> None:
        process, refresh = self.resolving, self.refresh
        assert process is not None
        assert refresh is not None
        if not process.read():
            return
        self.resolving = None
        try:
            resolved = process.result()
        except (RuntimeError, ValueError, KeyError) as e:
            self.log.error(f"resolving the secrets again failed ({e}); retrying with the "
                           "previous values")
        else:
            for failure in resolved.failures:
                self.log.error(f"could not resolve {failure}")
            if resolved.failures and self.params.fail_fast_config_resolution:
                self.log.error("retrying with the previous values")
            else:
                for secret in resolved.secrets:
                    self.log.add_secret(secret)
                self.environ = resolved.env
                refresh.written.extend(p for p in resolved.written if p not in refresh.written)
            refresh.resolved_at = time.monotonic()
        if self.retry_due and self.phase is Phase.WAITING:
            self.retry_due = False
            self._start_attempt()

    # -- leftovers: the command exited, but not everything it started --------------------------

    def _sweep_stragglers(self) -> None:
        """Terminate what the command left behind (TERM, grace, KILL); move on once none is left."""
        if self.phase is not Phase.CLEANING:
            return
        exclude = frozenset({self.reporter.pid} if self.reporter.pid else ())
        left = [] if self.params.keep_descendants else procs.descendants(os.getpid(), exclude)
        for fd in [fd for fd, pid in self.stragglers.items() if pid not in left]:
            procs.close_quietly(fd)
            del self.stragglers[fd]
        if not left:
            self._stragglers_done()
            return
        new = [pid for pid in left if pid not in self.signalled_stragglers]
        if new:
            self.log.info(f"{len(new)} process(es) left behind by the command: sending SIGTERM")
            for pid in new:
                self.signalled_stragglers.add(pid)
                procs.send_signal(pid, signal.SIGTERM, group=False)
                pidfd = procs.pidfd_open(pid)
                if pidfd is not None:
                    self.stragglers[pidfd] = pid
        if self.straggler_kill is None:
            self.straggler_kill = self.deadlines.after(
                self.params.process_termination_grace_period, "SIGKILL leftovers",
                self._kill_stragglers)
        if len(self.stragglers) < len(left) and self.straggler_recheck is None:
            # Some have no pidfd (already exited, or an old kernel): nothing will wake us.
            self.straggler_recheck = self.deadlines.after(
                STRAGGLER_RECHECK, "re-check leftovers", self._recheck_stragglers)

    def _on_straggler_exit(self, fd: int) -> None:
        if self.stragglers.pop(fd, None) is None:
            return  # closed earlier in this same round of events (the number may be reused)
        procs.close_quietly(fd)
        self._reap()
        self._sweep_stragglers()

    def _recheck_stragglers(self) -> None:
        self.straggler_recheck = None
        self._reap()
        self._sweep_stragglers()

    def _kill_stragglers(self) -> None:
        exclude = frozenset({self.reporter.pid} if self.reporter.pid else ())
        left = procs.descendants(os.getpid(), exclude)
        if left:
            self.log.warning(f"{len(left)} leftover process(es) ignored SIGTERM: sending SIGKILL")
        for pid in left:
            procs.send_signal(pid, signal.SIGKILL, group=False)

    def _stragglers_done(self) -> None:
        for fd in self.stragglers:
            procs.close_quietly(fd)
        self.stragglers.clear()
        self.signalled_stragglers.clear()
        for deadline in (self.straggler_kill, self.straggler_recheck):
            if deadline is not None:
                deadline.cancel()
        self.straggler_kill = self.straggler_recheck = None
        self._attempt_over()

    # -- stopping -------------------------------------------------------------------------

    def _stop(self, signum: int) -> None:
        """pwsup was told to stop: no more retries; the command gets the grace period."""
        repeated = self.stop_signal is not None
        if not repeated:
            self.stop_signal = signum
            self.log.info(f"received {signal_name(signum)}: stopping")
        attempt = self.attempt
        if self.phase is Phase.RUNNING and attempt is not None and attempt.running:
            self._arm_escalation(attempt)
        elif self.phase is Phase.STARTING or (self.phase is Phase.RUNNING and attempt is None):
            self._finish(Status.ABORTED, exitcodes.SIGNAL_BASE + signum)  # nothing running
        elif self.phase is Phase.WAITING:
            if self.retry is not None:
                self.retry.cancel()
            last = attempt.exit_code if attempt is not None else None
            self._finish(Status.ABORTED,
                         last if last is not None else exitcodes.SIGNAL_BASE + signum)
        elif self.phase is Phase.REPORTING:
            if repeated:
                self.log.error("stopping again: the final status could not be delivered")
                self._release_reporter(kill=True)
            else:
                self._cap_report_wait(self.params.shutdown_report_timeout)

    def request_remote_stop(self, reason: str) -> None:
        """The server stopped this execution: terminate the command like a SIGTERM would."""
        self.server_stop = reason
        attempt = self.attempt
        if attempt is not None and attempt.running:
            self.log.warning(f"{reason}: terminating the command")
            self._signal_command(attempt, signal.SIGTERM)
            self._arm_escalation(attempt)
        elif self.phase in (Phase.STARTING, Phase.WAITING):
            if self.retry is not None:
                self.retry.cancel()
            self._finish(Status.ABORTED, exitcodes.TEMPFAIL)

    # -- the reporter ---------------------------------------------------------------------

    def _start_reporter(self) -> None:
        if self.reporter_released or self.phase is Phase.DONE:
            return
        close = [self.signals.wakeup_fd, *self.stragglers, *(self.output or ())]
        if self.attempt is not None and self.attempt.pidfd is not None:
            close.append(self.attempt.pidfd)
        self.reporter_exited = False
        self.reporter.start(tuple(close))

    def _on_reporter_readable(self) -> None:
        channel = self.reporter.channel
        if channel is None:
            return  # released earlier in this same round of events
        def bad(why: str) -> None:
            self.log.error(f"bad message from the reporter: {why}")

        for message in channel.receive(bad):
            self._on_reporter_message(message)
        if channel.eof and self.reporter.channel is channel:
            self._on_reporter_lost()

    def _on_reporter_message(self, message: m.Message) -> None:
        from pwsup.ipc import messages as m

        if isinstance(message, m.Permit):
            self.reporter.permitted(message.execution_uuid)
            self.execution_uuid = message.execution_uuid
            if message.execution_uuid:
                self.log.execution_uuid = message.execution_uuid
            if self.phase is Phase.STARTING:
                self._start_attempt()
        elif isinstance(message, m.Deny):
            self.log.error(f"not starting the command: {message.reason}")
            if self.phase is Phase.STARTING:
                self._finish(Status.ABORTED, message.exit_code, report=False)
        elif isinstance(message, m.StopRequested):
            self.request_remote_stop(message.reason)
        elif isinstance(message, m.MainContainerExited):
            if self.phase is Phase.RUNNING and self.attempt is None:
                self.attempt = Attempt(self.attempts, 0, exit_code=message.exit_code)
                self._attempt_over()
        elif isinstance(message, m.FinishDelivered) and self.phase is Phase.REPORTING:
            self._end_reporting()
        else:
            self.log.debug(f"ignoring {type(message).__name__} from the reporter "
                           f"in phase {self.phase.name}")

    def _on_reporter_lost(self) -> None:
        self.reporter.lost()
        if self.phase is Phase.DONE:
            return
        delay = self.reporter.next_restart_delay()
        if delay is None:
            self.log.error("the reporter keeps failing; carrying on without it")
            self._carry_on_without_reporter()
            return
        self.log.warning(f"the reporter process exited unexpectedly; restarting it in {delay:g} s")
        self.deadlines.after(delay, "restart reporter", self._start_reporter)

    def _carry_on_without_reporter(self) -> None:
        if self.phase is Phase.STARTING:
            if self.params.prevent_offline_execution:
                self._finish(Status.ABORTED, exitcodes.FAILURE, report=False)
            else:
                self._start_attempt()
        elif self.phase is Phase.REPORTING:
            self._end_reporting()

    def _on_reporter_reaped(self, status: int) -> None:
        self.reporter_exited = True
        if self.phase is Phase.REPORTING and self.reporter_released:
            self.phase = Phase.DONE
        elif status != 0:
            code = exitcodes.from_wait_status(status)
            self.log.debug(f"reporter exited with {exitcodes.describe(code)}")

    # -- finishing ------------------------------------------------------------------------

    def _finish(self, status: Status, exit_code: int, *, report: bool = True) -> None:
        extra: dict[str, object] = {}
        result_failed = False
        if status is Status.SUCCEEDED and self.params.online and self.params.result_filename:
            status, exit_code = self._read_result(extra)
            result_failed = status is Status.FAILED
        self.exit_code = exit_code
        self.phase = Phase.REPORTING
        if not (report and self.params.online):
            # Offline it has nothing to deliver. Killing it first lets its teardown overlap
            # with the summary line: the exit latency is a measured figure.
            self._release_reporter(kill=True)
            self._log_summary(status, exit_code)
            return
        self._log_summary(status, exit_code)
        from pwsup.ipc.messages import Finish

        command_code = None  # what the server records: the command's own exit code...
        if self.attempt is not None and self.attempt.exit_code is not None:
            command_code = self.attempt.exit_code
            self.reporter.attempt_ended(self._attempt_ended(self.attempt, will_retry=False))
        if result_failed:
            command_code = exitcodes.FAILURE  # ...unless its result was unusable (as pwsup)
        self.reporter.finish(Finish(
            status=status.value, exit_code=command_code, failed_attempts=self.failed_attempts,
            timed_out_attempts=self.timed_out_attempts, finished_at=utc_now(),
            shutdown=self.stop_signal is not None, extra=extra))
        if self.reporter.channel is None and not self.reporter.restarts_left:
            self._end_reporting()
        elif self.stop_signal is not None:
            self._cap_report_wait(self.params.shutdown_report_timeout)
        elif self.params.api_final_update_timeout is not None:
            self._cap_report_wait(self.params.api_final_update_timeout + REPORTER_EXIT_GRACE)

    def _read_result(self, extra: dict[str, object]) -> tuple[Status, int]:
        """Read the result file into `extra`; a malformed one fails the run (exit 1)."""
        value, error = values.read_result(self.params)
        if error is not None:
            self.log.error(error)
            return Status.FAILED, exitcodes.FAILURE
        if value is not None:
            import json

            extra["output_value"] = json.loads(json.dumps(value, default=str))
            if self.params.log_result_value:
                self.log.info(f"result value: {extra['output_value']!r}")
        return Status.SUCCEEDED, exitcodes.SUCCESS

    def _attempt_ended(self, attempt: Attempt, *, will_retry: bool) -> m.AttemptEnded:
        from pwsup.ipc.messages import AttemptEnded

        assert attempt.exit_code is not None
        return AttemptEnded(attempt=attempt.number, exit_code=attempt.exit_code,
                            timed_out=attempt.timed_out, failed_attempts=self.failed_attempts,
                            timed_out_attempts=self.timed_out_attempts, will_retry=will_retry)

    def _cap_report_wait(self, seconds: float) -> None:
        if self.report_cap is not None:
            self.report_cap.cancel()
        self.report_cap = self.deadlines.after(seconds, "final report cap", self._report_timed_out)

    def _report_timed_out(self) -> None:
        self.log.error("the final status could not be delivered in time; exiting without it")
        self._release_reporter(kill=True)

    def _end_reporting(self) -> None:
        """The final report is done (or given up on): let the reporter go."""
        self._release_reporter(kill=False)

    def _release_reporter(self, *, kill: bool) -> None:
        """Close the reporter's pipe (its cue to exit; DONE once it is reaped), or kill it
        (DONE at once: SIGKILL cannot be caught, so it is gone whether or not we stay to
        reap it — whoever inherits it, init or a subreaper, does)."""
        self.reporter_released = True
        if kill:
            self.reporter.kill()
        else:
            self.reporter.lost()
        if kill or self.reporter_exited or self.reporter.pid is None:
            self.phase = Phase.DONE
        else:
            self.deadlines.after(REPORTER_EXIT_GRACE, "reporter exit", self._force_done)

    def _force_done(self) -> None:
        self.reporter.kill()
        self.phase = Phase.DONE

    def _take_terminal_back(self) -> None:
        if self.tty is not None:
            try:
                os.tcsetpgrp(self.tty, os.getpgrp())
            except OSError:
                pass

    def _log_summary(self, status: Status, exit_code: int) -> None:
        outcome = {
            Status.SUCCEEDED: "succeeded",
            Status.FAILED: f"failed with {exitcodes.describe(exit_code)}",
            Status.TERMINATED_AFTER_TIME_OUT: "timed out",
            Status.ABORTED: "was aborted" + (f" by {signal_name(self.stop_signal)}"
                                             if self.stop_signal else ""),
        }[status]
        limit = self.params.max_attempts
        attempts = (f"attempt {self.attempts} of {limit if limit else 'unlimited'}"
                    if self.attempts else "not started")
        elapsed = time.monotonic() - self.started
        self.log.info(f"Task '{self.params.display_name}' {outcome}: exit code {exit_code}, "
                      f"{attempts}, {elapsed:.3f} s in total")
