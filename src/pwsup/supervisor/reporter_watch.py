"""The reporter, as the parent's loop sees it: starting and restarting the process, and acting
on what it says (Permit · Deny · StopRequested · MainContainerExited · FinishDelivered).

Everything the server decides reaches the parent here, as a message. The reporter dying
does not end the run: it is restarted with a backoff, and once restarts are used up the run
carries on without it (a run still waiting to start with --prevent-offline-execution does
not start). `link.py` is the pipe and the process; this is what the loop does about them.
"""

from __future__ import annotations

from pwsup import exitcodes
from pwsup.supervisor.state import Attempt, Phase, Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.ipc import messages as m
    from pwsup.supervisor.attempts import AttemptRunner
    from pwsup.supervisor.ending import Ending
    from pwsup.supervisor.leftovers import Leftovers
    from pwsup.supervisor.state import RunState


class ReporterWatch:
    """Keeps a reporter running until the end, and turns its messages into decisions."""

    def __init__(self, run: RunState, runner: AttemptRunner, ending: Ending,
                 leftovers: Leftovers, remote_stop: Callable[[str], None]) -> None:
        self.run = run
        self.runner = runner
        self.ending = ending
        self.leftovers = leftovers
        self.remote_stop = remote_stop
        """What the loop does when the server stops the execution."""

    def start(self) -> None:
        run = self.run
        if run.reporter_released or run.phase is Phase.DONE:
            return
        close = [run.signals.wakeup_fd, *self.leftovers.pidfds, *(run.output or ())]
        if run.attempt is not None and run.attempt.pidfd is not None:
            close.append(run.attempt.pidfd)
        if self.runner.unconfirmed is not None and self.runner.unconfirmed.report_fd is not None:
            close.append(self.runner.unconfirmed.report_fd)
        run.reporter_exited = False
        if run.reporter.restarts == 0:
            run.reporter.start(tuple(close))  # a first start that fails ends the run (71)
            return
        from pwsup.supervisor.forking import ForkError

        try:
            run.reporter.start(tuple(close))
        except ForkError as e:  # mid-run: the command goes on; try again later, or without
            run.log.warning(f"{e}; the command runs on")
            run.reporter_exited = True
            self._on_lost()

    def on_readable(self) -> None:
        run = self.run
        channel = run.reporter.channel
        if channel is None:
            return  # released earlier in this same round of events
        def bad(why: str) -> None:
            run.log.error(f"bad message from the reporter: {why}")

        for message in channel.receive(bad):
            self._on_message(message)
        if channel.eof and run.reporter.channel is channel:
            self._on_lost()

    def _on_message(self, message: m.Message) -> None:
        from pwsup.ipc import messages as m

        run = self.run
        if isinstance(message, m.Permit):
            run.reporter.permitted(message.execution_uuid)
            run.execution_uuid = message.execution_uuid
            if message.execution_uuid:
                run.log.execution_uuid = message.execution_uuid
            if run.phase is Phase.STARTING:
                self.runner.start()
        elif isinstance(message, m.Deny):
            run.log.error(f"not starting the command: {message.reason}")
            if run.phase is Phase.STARTING:
                self.ending.finish(Status.ABORTED, message.exit_code, report=False)
        elif isinstance(message, m.StopRequested):
            self.remote_stop(message.reason)
        elif isinstance(message, m.MainContainerExited):
            if run.phase is Phase.RUNNING and run.attempt is None:
                run.attempt = Attempt(run.attempts, 0, exit_code=message.exit_code)
                self.runner.over()
        elif isinstance(message, m.FinishDelivered) and run.phase is Phase.REPORTING:
            self.ending.end_reporting()
        else:
            run.log.debug(f"ignoring {type(message).__name__} from the reporter "
                          f"in phase {run.phase.name}")

    def _on_lost(self) -> None:
        run = self.run
        run.reporter.lost()
        if run.phase is Phase.DONE:
            return
        delay = run.reporter.next_restart_delay()
        if delay is None:
            run.log.error("the reporter keeps failing; carrying on without it")
            self._carry_on_without_reporter()
            return
        run.log.warning(f"the reporter process exited unexpectedly; restarting it in {delay:g} s")
        run.deadlines.after(delay, "restart reporter", self.start)

    def _carry_on_without_reporter(self) -> None:
        run = self.run
        capture = run.reporter.seed.capture
        if capture is not None and run.drain is None:
            from pwsup.supervisor.drain import OutputDrain  # nobody else reads those pipes now

            run.drain = OutputDrain(capture)
        if run.phase is Phase.STARTING:
            if run.params.prevent_offline_execution:
                self.ending.finish(Status.ABORTED, exitcodes.FAILURE, report=False)
            else:
                self.runner.start()
        elif run.phase is Phase.REPORTING:
            self.ending.end_reporting()

    def reaped(self, status: int) -> None:
        """The reporter process exited (its status, as waitpid gives it)."""
        run = self.run
        run.reporter_exited = True
        if run.phase is Phase.REPORTING and run.reporter_released:
            run.phase = Phase.DONE
        elif status != 0:
            code = exitcodes.from_wait_status(status)
            run.log.debug(f"reporter exited with {exitcodes.describe(code)}")
