"""Attempts: starting the command, holding it to its time limit, the SIGTERM → grace →
SIGKILL escalation, and what follows its end — a retry after the delay, or the end of the run.

An attempt's end is counted here (failed, or timed out; neither when pwsup was told to
stop) and decides what comes next: a retry while attempts are left, otherwise the end of
the run. Before a retry, secrets older than --config-ttl are resolved again (`refresh.py`);
the retry starts once they are in.
"""

from __future__ import annotations

import time

from pwsup import exitcodes
from pwsup.config import childenv, values
from pwsup.supervisor import procs
from pwsup.supervisor.child import SpawnError, SpawnRequest, spawn
from pwsup.supervisor.ending import attempt_ended
from pwsup.supervisor.forking import ForkError
from pwsup.supervisor.state import Attempt, Phase, Status
from pwsup.util.log import DEBUG
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pwsup.supervisor.child import Spawned
    from pwsup.supervisor.deadlines import Deadline
    from pwsup.supervisor.ending import Ending
    from pwsup.supervisor.memory import MemoryWatch
    from pwsup.supervisor.refresh import SecretsRefresh
    from pwsup.supervisor.state import RunState


class AttemptRunner:
    """Starts each attempt, watches its time, and decides what its end leads to."""

    def __init__(self, run: RunState, ending: Ending, secrets: SecretsRefresh | None) -> None:
        self.run = run
        self.ending = ending
        self.secrets = secrets
        self.retry: Deadline | None = None
        self.retry_due = False
        """The retry delay is over, but fresh secrets are still being resolved."""
        self.unconfirmed: Spawned | None = None
        """The command just forked by `start(confirm=False)`, its exec not yet confirmed."""
        self.memory: MemoryWatch | None = None
        limit = run.params.memory_limit
        if limit is not None:  # only runs with a memory limit load the module
            from pwsup.supervisor.memory import MemoryWatch

            self.memory = MemoryWatch(run, limit, run.params.memory_check_interval,
                                      escalate=self.arm_escalation)

    def start(self, *, confirm: bool = True) -> None:
        """Start the next attempt. `confirm=False` returns while the command still execs,
        for the caller to do other work meanwhile; it then calls `confirm_exec()` before
        anything else may rely on the command."""
        run, params = self.run, self.run.params
        self.retry = None
        run.attempts += 1
        number = run.attempts
        if params.sidecar_container_mode:
            run.phase = Phase.RUNNING  # the reporter watches the main container for us
            run.log.info("ECS sidecar mode: waiting for the main container to exit")
            return
        env = childenv.build(params, run.environ, execution_uuid=run.execution_uuid,
                             cookie=run.reporter.seed.cookie)
        if run.input is not None:
            env[values.input_variable(params)] = run.input
        request = SpawnRequest(argv=run.argv, env=env, cwd=params.work_dir,
                               foreground_tty=run.tty, death_signal=signal.SIGTERM,
                               output=run.output)
        run.phase = Phase.RUNNING
        try:
            _load_wait4()
            spawned = spawn(request, run.signals)
        except OSError as e:  # pwsup's own resources (pipes, fork), not the command's fault
            run.log.error(f"could not start the command: {e.strerror or e}")
            self.ending.cannot_start()
            return
        if confirm:
            failure = _exec_failure(spawned)
            if failure is not None:
                self._not_started(number, failure)
                return
        else:
            self.unconfirmed = spawned
        pid = spawned.pid
        attempt = Attempt(number, pid, pidfd=procs.pidfd_open(pid), started=time.monotonic())
        run.next_attempt(attempt)
        run.log.debug(f"attempt {number} started: pid {pid}")
        limit = params.attempt_timeout
        if limit is not None:
            attempt.timeout = run.deadlines.after(limit, "time limit", self._on_time_limit)
        if self.memory is not None:
            self.memory.start(attempt)
        run.reporter.attempt_started(number, pid)

    def confirm_exec(self) -> None:
        """The exec `start(confirm=False)` left unconfirmed: if it failed, the attempt
        recorded meanwhile becomes one that never started."""
        spawned, self.unconfirmed = self.unconfirmed, None
        attempt = self.run.attempt
        if spawned is None or attempt is None:
            return
        failure = _exec_failure(spawned)
        if failure is None:
            return
        procs.close_quietly(attempt.pidfd)
        attempt.pidfd = None
        if attempt.timeout is not None:
            attempt.timeout.cancel()
        if self.memory is not None:
            self.memory.forget(attempt)
        self.run.attempt = None  # it never ran: it costs nothing and is replaced below
        self._not_started(attempt.number, failure)

    def _not_started(self, number: int, failure: SpawnError) -> None:
        self.run.log.error(f"could not start the command: {failure}")
        self.run.next_attempt(Attempt(number, pid=0, exit_code=failure.exit_code))
        self.over()

    # -- time limit and escalation ------------------------------------------------------

    def _on_time_limit(self) -> None:
        run = self.run
        attempt = run.attempt
        if (attempt is None or not attempt.running or run.stop_signal is not None
                or attempt.memory_exceeded is not None):
            return  # a stop signal (or the memory limit) came first: it decided the attempt
        attempt.timed_out = True
        run.log.warning(f"attempt {attempt.number} exceeded its time limit of "
                        f"{run.params.process_timeout:g} s: sending SIGTERM")
        run.signal_command(attempt, signal.SIGTERM)
        self.arm_escalation(attempt)

    def arm_escalation(self, attempt: Attempt) -> None:
        """SIGKILL the command if it is still running once the grace period is over."""
        if attempt.escalation is None:
            attempt.escalation = self.run.deadlines.after(
                self.run.params.process_termination_grace_period, "SIGKILL escalation",
                lambda: self._escalate(attempt))

    def _escalate(self, attempt: Attempt) -> None:
        run = self.run
        if attempt.running:
            run.log.warning(f"the command did not exit within the grace period of "
                            f"{run.params.process_termination_grace_period:g} s: sending SIGKILL")
            run.signal_command(attempt, signal.SIGKILL)
            if self.memory is not None:
                self.memory.kill_outside()

    # -- the attempt's end ----------------------------------------------------------------

    def exited(self, exit_code: int) -> None:
        """The command exited (reaped): record it. What it left behind is cleaned up next;
        the attempt is over once that is done (`over`)."""
        run = self.run
        attempt = run.attempt
        assert attempt is not None, "only a running attempt exits"
        assert attempt.running, "only a running attempt exits"
        attempt.exit_code = exit_code
        attempt.wall = time.monotonic() - attempt.started
        procs.close_quietly(attempt.pidfd)
        attempt.pidfd = None
        for deadline in (attempt.timeout, attempt.escalation):
            if deadline is not None:
                deadline.cancel()
        if self.memory is not None:
            self.memory.forget(attempt)
        run.take_terminal_back()
        if run.log.enabled(DEBUG):
            run.log.debug(f"attempt {attempt.number} ended: {exitcodes.describe(exit_code)}")


    def _run_is_over(self, attempt: Attempt) -> bool:
        """Whether this attempt's end is the end of the run (no retry can follow)."""
        if self.run.stop_signal is not None or self.run.server_stop is not None:
            return True
        succeeded = attempt.exit_code == 0 and not attempt.ended_by_limit
        return succeeded or not self._attempts_left()

    def over(self) -> None:
        """The attempt is over, nothing of it left running: count it, then retry or finish.

        Offline, at the end of the run, the reporter is killed first thing: it had nothing
        to deliver and was only the watchdog, needed while something of the run could
        outlive a SIGKILLed pwsup (the command, then its leftovers); its teardown overlaps
        with ours (the exit latency is a measured figure)."""
        run = self.run
        attempt = run.attempt
        assert attempt is not None
        assert attempt.exit_code is not None
        if not run.params.online and self._run_is_over(attempt):
            run.reporter.kill()
        code = attempt.exit_code
        stopped = run.stop_signal is not None
        if run.server_stop is not None and not stopped:
            self.ending.finish(Status.ABORTED, exitcodes.TEMPFAIL)
            return
        # A limit (time, memory), when it came before any stop signal, decided the
        # attempt: a stop signal during its grace period only rules out a retry.
        if attempt.timed_out:
            run.timed_out_attempts += 1
        elif attempt.memory_exceeded is not None:
            run.failed_attempts += 1
        elif stopped:
            self.ending.finish(Status.ABORTED, code)
            return
        elif code != 0:
            run.failed_attempts += 1
        if code == 0 and not attempt.ended_by_limit:
            self.ending.finish(Status.SUCCEEDED, 0)
        elif not stopped and self._attempts_left():
            self._schedule_retry(attempt, code)
        elif attempt.timed_out:
            self.ending.finish(Status.TERMINATED_AFTER_TIME_OUT, exitcodes.TIMED_OUT)
        elif attempt.memory_exceeded is not None:
            self.ending.finish(Status.FAILED, exitcodes.MEMORY_EXCEEDED)
        else:
            self.ending.finish(Status.FAILED, code)

    def _attempts_left(self) -> bool:
        if self.run.params.sidecar_container_mode:
            return False
        limit = self.run.params.max_attempts
        return limit is None or self.run.attempts < limit

    # -- retries ------------------------------------------------------------------------------

    def _schedule_retry(self, attempt: Attempt, code: int) -> None:
        run = self.run
        delay = run.params.process_retry_delay
        what = ("timed out" if attempt.timed_out else "exceeded its memory limit"
                if attempt.memory_exceeded is not None
                else f"failed ({exitcodes.describe(code)})")
        cost = f" ({attempt.usage.describe()})" if attempt.pid else ""
        run.log.warning(f"attempt {attempt.number} {what}{cost}; retrying in {delay:g} s")
        run.reporter.attempt_ended(attempt_ended(run, attempt, will_retry=True))
        run.phase = Phase.WAITING
        self.retry = run.deadlines.after(delay, "retry", self._retry_now)

    def cancel_retry(self) -> None:
        if self.retry is not None:
            self.retry.cancel()

    def _retry_now(self) -> None:
        if self._fresh_secrets_under_way():
            self.retry_due = True  # start once the fresh secrets are in
        else:
            self.start()

    def _fresh_secrets_under_way(self) -> bool:
        if self.secrets is None:
            return False
        try:
            return self.secrets.under_way()
        except ForkError as e:  # the retry's own fork will tell whether any is left
            self.run.log.error(f"{e}; retrying with the previous values")
            return False

    def on_resolver_readable(self) -> None:
        """The resolver sent more; once the fresh secrets are all in, a due retry starts."""
        assert self.secrets is not None
        if not self.secrets.read():
            return
        if self.retry_due and self.run.phase is Phase.WAITING:
            self.retry_due = False
            self.start()


def _exec_failure(spawned: Spawned) -> SpawnError | None:
    try:
        spawned.confirm()
    except SpawnError as e:
        return e
    return None


def _load_wait4() -> None:
    """Load what `os.wait4` needs before the command runs: its first call imports the
    `resource` extension module (0.2 ms and more), which would otherwise lengthen the
    time from the command's exit to pwsup's exit — a measured figure. And it must not fail
    there: `wait4` that cannot import it has reaped the child and lost its status. So it is
    loaded before the spawn's pipes take descriptors (a run at its descriptor limit then
    fails cleanly before anything starts)."""
    try:
        import resource  # noqa: F401
    except ImportError as e:  # out of descriptors to open the extension module with
        raise OSError(f"cannot load the resource module ({e.msg})") from None
