"""The parent: one event loop that spawns, signals, reaps and decides — and nothing else.

```
 poll ─┬─ signal wakeup pipe ─▶ SIGCHLD: reap · HUP INT QUIT USR1 USR2 WINCH TERM: forward
       │                        (TERM/INT/QUIT also stop the run: grace, then SIGKILL)
       ├─ command's pidfd ────▶ reap → clean up what it left → retry, or finish
       ├─ straggler pidfds ───▶ re-check what is left
       ├─ reporter pipe ──────▶ Permit · Deny · StopRequested · FinishDelivered · EOF
       ├─ resolver pipe ──────▶ fresh secrets in → the retry that waited for them
       └─ deadlines ──────────▶ time limit · memory check · SIGKILL escalation · retry ·
                                reporter restart
```

The one rule: nothing here waits on the outside world. No HTTP, DNS or AWS code is even
imported (a test checks `sys.modules`); the reporter does all of that. Every timed action
is a deadline on the monotonic clock, so a signal or an exit is acted on the moment it
arrives whatever else is pending.

Phases (`state.Phase`), and what moves between them:

    STARTING ──permit──▶ RUNNING ──command exits──▶ CLEANING ──nothing left──┬─▶ WAITING ─▶ RUNNING
        │                                                                     └─▶ REPORTING ─▶ DONE
        └──deny / stop signal──────────────────────────────────────────────────▶ REPORTING

This module is the loop and its dispatch; the work is done by its parts, each in its own
module, all sharing one record of the run (`state.RunState`):

- `attempts.AttemptRunner`: start an attempt, its time limit, SIGTERM → grace → SIGKILL,
  and what its end leads to (a retry, or the end of the run);
- `refresh.SecretsRefresh`: secrets resolved again before a retry once they are stale;
- `leftovers.Leftovers`: what the command left running when it exited;
- `reporter_watch.ReporterWatch`: the reporter's messages, its restarts, its exit;
- `ending.Ending`: the final status, the final report and its time limit, the summary line.

Calls go one way — the loop → the reporter watch → attempts (→ the secrets refresh) → the
ending → the shared record — and leftovers answer through the two callbacks they are given,
so no part imports the loop or a part above it.
"""

from __future__ import annotations

import os
import select

from pwsup import exitcodes
from pwsup.supervisor import procs
from pwsup.supervisor.attempts import AttemptRunner
from pwsup.supervisor.ending import Ending
from pwsup.supervisor.forking import ForkError
from pwsup.supervisor.leftovers import Leftovers
from pwsup.supervisor.reporter_watch import ReporterWatch
from pwsup.supervisor.signals import STOPPING, signal_name
from pwsup.supervisor.state import Phase, RunState, Status
from pwsup.util import files
from pwsup.util.log import DEBUG
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pwsup.config.params import Params
    from pwsup.supervisor.refresh import Refresh, SecretsRefresh
    from pwsup.util.log import Log

REAP_WAIT = 1.0
"""The longest pwsup waits at exit for its reporter to be gone after SIGKILL (it takes a
millisecond; a process stuck in uninterruptible sleep may take longer, and is left)."""


class Supervisor(RunState):
    """Runs one wrapped command to completion. `run()` returns pwsup's exit code."""

    def __init__(self, params: Params, argv: Sequence[str], log: Log,
                 environ: Mapping[str, str], refresh: Refresh | None = None) -> None:
        super().__init__(params, argv, log, environ)
        self.input_file: tuple[int, int] | None = None
        """The identity (st_dev, st_ino) of the input file pwsup wrote, if it wrote one."""
        self.secrets: SecretsRefresh | None = None
        if refresh is not None:  # only runs that resolved secrets at start load this
            from pwsup.supervisor.refresh import SecretsRefresh

            self.secrets = SecretsRefresh(self, refresh)
        self.ending = Ending(self)
        self.runner = AttemptRunner(self, self.ending, self.secrets)
        self.leftovers = Leftovers(self, reap=self._reap, done=self.runner.over)
        self.watch = ReporterWatch(self, self.runner, self.ending, self.leftovers,
                                   self.request_remote_stop)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self._setup()
            while self.phase is not Phase.DONE:
                self._poll_once()
        except ForkError as e:  # e.g. a reporter restart: out of processes is no traceback
            self.log.error(f"{e}; stopping")
            self.ending.abandon(exitcodes.OS_ERROR)
        finally:
            self.take_terminal_back()
            self._remove_input_file()
            self._stop_resolver()
            self._reap_command()
            self._reap_reporter()
            if self.drain is not None:
                self.drain.finish()
        return self.exit_code

    def _stop_resolver(self) -> None:
        """A resolver still fetching fresh secrets has nothing left to give: SIGKILL it and
        reap it, so that no process of this run outlives it, not even a zombie."""
        if self.secrets is not None and self.secrets.resolving is not None:
            self.secrets.resolving.kill()
            self.secrets.resolving = None

    def _reap_command(self) -> None:
        """A command abandoned (pwsup ran out of processes, memory or descriptors) was sent
        SIGKILL: reap it too, within the same bound as the reporter."""
        attempt = self.attempt
        if attempt is not None and attempt.running:
            procs.wait_reaped(attempt.pid, REAP_WAIT)

    def _reap_reporter(self) -> None:
        """Leave no reporter behind, not even a zombie: by now it has exited or been sent
        SIGKILL, so this wait is short; it is bounded all the same."""
        pid = self.reporter.pid
        if pid is not None and not self.reporter_exited:
            self.reporter_exited = procs.wait_reaped(pid, REAP_WAIT) is not None

    def _write_input_file(self) -> None:
        """Write the input value to --input-filename: a new file, or one replacing a
        regular file there; anything else at that path (a device, a FIFO, a symbolic
        link...) is refused with NotRegular and left untouched (the configuration refuses
        it first, but the path may have changed since)."""
        path = self.params.input_filename
        if path and self.input is not None:
            self.input_file = files.write_private(path, self.input)

    def _remove_input_file(self) -> None:
        """By default, remove the input file only if pwsup wrote it, and only if it is still
        the file pwsup wrote (the same inode); with --cleanup-input-file, whatever regular
        file is there (proc_wrapper's contract). Never anything but a regular file (see
        `files.remove_quietly`)."""
        cleanup = self.params.cleanup_input_file
        if cleanup:
            files.remove_quietly(self.params.input_filename)
        elif cleanup is None and self.input_file is not None:
            files.remove_quietly(self.params.input_filename, self.input_file)

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
        except ForkError as e:  # "could not start the reporter: ..."
            self._abandon_setup(str(e))
        except OSError as e:  # out of file descriptors: say so, and stop what started
            self._abandon_setup(f"pwsup could not set itself up: {e.strerror or e}")

    def _abandon_setup(self, why: str) -> None:
        started = self.attempt is not None and self.attempt.running
        self.log.error(f"{why}; " + ("stopping the command" if started
                                     else "nothing was started"))
        self.ending.abandon(exitcodes.OS_ERROR)

    def _set_up_process(self) -> None:
        self.signals.install()
        self.subreaper = procs.become_subreaper()
        if not self.subreaper:
            self.log.debug("could not become a child subreaper; orphans go to init")
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            self.tty = 0
        if self.params.log_capture_lines:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.reporter.seed.capture = (out_r, err_r)
            self.output = (out_w, err_w)
        if self.params.online:
            from pwsup.util.timefmt import utc_now  # an offline run never needs a timestamp

            self._set_title()
            self.watch.start()
            self.reporter.begin(utc_now())
        else:
            # Nothing to ask permission for: start the command first, then the reporter,
            # which learns the command's group from the seed (no message needed). Its pipes
            # are made first, so running out of descriptors cannot strand a started command.
            self.reporter.prepare()
            self.runner.start(confirm=False)
            self._set_title()  # these two while the command execs: a millisecond off the
            self.watch.start()  # start, and the watchdog is there before it could matter
            self.runner.confirm_exec()

    def _set_title(self) -> None:
        """`pwsup: <task>` in ps and top. Set before the reporter is forked, which then
        finds the title machinery loaded for its own. Only a nicety: out of descriptors
        (loading it opens files, and offline the command is already running), pwsup goes
        on without it rather than stop a started command."""
        try:
            from pwsup.util.title import set_title

            set_title(f"pwsup: {self.params.display_name}")
        except OSError as e:
            self.log.debug(f"no process title: {e.strerror or e}")

    def _poll_once(self) -> None:
        poller = select.poll()
        handlers: dict[int, Callable[[], None]] = {self.signals.wakeup_fd: self._on_signals}
        if self.attempt is not None and self.attempt.pidfd is not None:
            handlers[self.attempt.pidfd] = self._reap
        channel = self.reporter.channel
        if channel is not None:
            handlers[channel.read_fd] = self.watch.on_readable
            if channel.pending_output:
                poller.register(channel.write_fd, select.POLLOUT)
        for fd in self.leftovers.pidfds:
            handlers[fd] = lambda fd=fd: self.leftovers.on_exit(fd)  # type: ignore[misc]
        if self.secrets is not None and self.secrets.resolving is not None:
            handlers[self.secrets.resolving.fd] = self.runner.on_resolver_readable
        if self.drain is not None:
            self._watch_drain(poller, handlers)
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

    def _watch_drain(self, poller: select.poll, handlers: dict[int, Callable[[], None]]) -> None:
        """Captured output to pass through: read what can be written now, wait for the rest."""
        drain = self.drain
        assert drain is not None
        ready, blocked = drain.split()
        for source in ready:
            handlers[source] = lambda source=source: drain.copy(source)  # type: ignore[misc]
        for target in blocked:
            poller.register(target, select.POLLOUT)

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
            self.signal_command(attempt, signum)  # first: this is the latency that counts
            if self.log.enabled(DEBUG):
                self.log.debug(f"forwarded {signal_name(signum)} to the command")
        if signum in STOPPING:
            self._stop(signum)

    def _reap(self) -> None:
        while (reaped := procs.reap_any()) is not None:
            pid, status, usage = reaped
            attempt = self.attempt
            if attempt is not None and pid == attempt.pid:
                attempt.add_usage(usage)
                self.runner.exited(exitcodes.from_wait_status(status))
                self.leftovers.clean_up()
            elif pid == self.reporter.pid:
                self.watch.reaped(status)
            else:
                if attempt is not None and self.phase in (Phase.RUNNING, Phase.CLEANING):
                    attempt.add_usage(usage)  # an orphan of its tree, re-parented to us
                if self.log.enabled(DEBUG):
                    code = exitcodes.from_wait_status(status)
                    self.log.debug(f"reaped orphan {pid} ({exitcodes.describe(code)})")
        if self.leftovers.active:
            self.leftovers.sweep()

    # -- stopping -------------------------------------------------------------------------

    def _stop(self, signum: int) -> None:
        """pwsup was told to stop: no more retries; the command gets the grace period."""
        repeated = self.stop_signal is not None
        if not repeated:
            self.stop_signal = signum
            self.log.info(f"received {signal_name(signum)}: stopping")
        attempt = self.attempt
        if self.phase is Phase.RUNNING and attempt is not None and attempt.running:
            self.runner.arm_escalation(attempt)
        elif self.phase is Phase.STARTING or (self.phase is Phase.RUNNING and attempt is None):
            self.ending.finish(Status.ABORTED, exitcodes.SIGNAL_BASE + signum)  # nothing running
        elif self.phase is Phase.WAITING:  # no retry: the last attempt's exit status stands
            self.runner.cancel_retry()
            self._stop_resolver()
            last = attempt.exit_code if attempt is not None else None
            if attempt is not None and attempt.timed_out:
                last = exitcodes.TIMED_OUT
            elif attempt is not None and attempt.memory_exceeded is not None:
                last = exitcodes.MEMORY_EXCEEDED
            self.ending.finish(Status.ABORTED,
                               last if last is not None else exitcodes.SIGNAL_BASE + signum)
        elif self.phase is Phase.REPORTING:
            if repeated:
                self.log.error("stopping again: the final status could not be delivered")
                self.ending.release_reporter(kill=True)
            else:
                self.ending.cap_report_wait(self.params.shutdown_report_timeout)

    def request_remote_stop(self, reason: str) -> None:
        """The server stopped this execution: terminate the command like a SIGTERM would."""
        self.server_stop = reason
        attempt = self.attempt
        if attempt is not None and attempt.running:
            self.log.warning(f"{reason}: terminating the command")
            self.signal_command(attempt, signal.SIGTERM)
            self.runner.arm_escalation(attempt)
        elif self.phase in (Phase.STARTING, Phase.WAITING):
            self.runner.cancel_retry()
            self.ending.finish(Status.ABORTED, exitcodes.TEMPFAIL)
