"""How a run ends: its final status and exit code, the result file, the final report and how
long it may take, letting the reporter go, and the one summary line.

The last attempt, a stop signal, the server refusing to start the run and pwsup running out
of its own resources all end the run here. The final report is the only thing pwsup waits
for at the end: at most --shutdown-report-timeout once pwsup was told to stop, otherwise
--api-final-update-timeout (when set) and a short grace for the reporter's exit, so a hung
server delays the exit by a configured time.
"""

from __future__ import annotations

import time

from pwsup import exitcodes
from pwsup.config import values
from pwsup.supervisor.signals import signal_name
from pwsup.supervisor.state import Phase, Status
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pwsup.ipc import messages as m
    from pwsup.supervisor.deadlines import Deadline
    from pwsup.supervisor.state import Attempt, RunState

MIB = 1024 * 1024
REPORTER_EXIT_GRACE = 2.0
"""After the final report is done, how long the reporter may take to exit before SIGKILL."""


def attempt_ended(run: RunState, attempt: Attempt, *, will_retry: bool) -> m.AttemptEnded:
    """What the reporter is told when an attempt is over, with the run's counts so far."""
    from pwsup.ipc.messages import AttemptEnded

    assert attempt.exit_code is not None
    usage = attempt.usage.as_dict() if attempt.pid else None
    exceeded = attempt.memory_exceeded
    return AttemptEnded(attempt=attempt.number, exit_code=attempt.exit_code,
                        timed_out=attempt.timed_out, failed_attempts=run.failed_attempts,
                        timed_out_attempts=run.timed_out_attempts, will_retry=will_retry,
                        usage=usage, total_usage=run.total_usage.as_dict(),
                        memory_exceeded=None if exceeded is None else
                        {"rss_bytes": exceeded[0], "limit_bytes": exceeded[1]})


class Ending:
    """Finishes the run and sees the final report out (or gives up on it, in time)."""

    def __init__(self, run: RunState) -> None:
        self.run = run
        self.report_cap: Deadline | None = None

    def abandon(self, exit_code: int) -> None:
        """End the run now: nothing of it may keep running."""
        run = self.run
        attempt = run.attempt
        if attempt is not None and attempt.running:
            run.signal_command(attempt, signal.SIGKILL)
        run.reporter.kill()
        run.exit_code, run.phase = exit_code, Phase.DONE

    def cannot_start(self) -> None:
        """pwsup could not start an attempt (out of processes, memory or descriptors): the
        run fails with 71, and the server hears of it when a reporter is there to tell it
        (the parent itself never speaks to the server)."""
        if self.run.params.online and self.run.reporter.channel is not None:
            self.finish(Status.FAILED, exitcodes.OS_ERROR)
        else:
            self.abandon(exitcodes.OS_ERROR)

    def finish(self, status: str, exit_code: int, *, report: bool = True) -> None:
        run, params = self.run, self.run.params
        extra: dict[str, object] = {}
        result_failed = False
        if status == Status.SUCCEEDED and params.online and params.result_filename:
            status, exit_code = self._read_result(extra)
            result_failed = status == Status.FAILED
        run.exit_code = exit_code
        run.phase = Phase.REPORTING
        if not (report and params.online):
            # Offline it has nothing to deliver. Killing it first lets its teardown overlap
            # with the summary line: the exit latency is a measured figure.
            self.release_reporter(kill=True)
            self._log_summary(status, exit_code)
            return
        self._log_summary(status, exit_code)
        self._send_final_report(status, extra, result_failed=result_failed)
        if run.reporter.channel is None and not run.reporter.restarts_left:
            self.end_reporting()
        elif run.stop_signal is not None:
            self.cap_report_wait(params.shutdown_report_timeout)
        elif params.api_final_update_timeout is not None:
            self.cap_report_wait(params.api_final_update_timeout + REPORTER_EXIT_GRACE)

    def _send_final_report(self, status: str, extra: dict[str, object], *,
                           result_failed: bool) -> None:
        from pwsup.ipc.messages import Finish

        run = self.run
        command_code = None  # what the server records: the command's own exit code...
        if run.attempt is not None and run.attempt.exit_code is not None:
            command_code = run.attempt.exit_code
            run.reporter.attempt_ended(attempt_ended(run, run.attempt, will_retry=False))
        if result_failed:
            command_code = exitcodes.FAILURE  # ...unless its result was unusable (as pwsup)
        run.reporter.finish(Finish(
            status=status, exit_code=command_code, failed_attempts=run.failed_attempts,
            timed_out_attempts=run.timed_out_attempts, finished_at=_utc_now(),
            shutdown=run.stop_signal is not None, extra=extra))

    def _read_result(self, extra: dict[str, object]) -> tuple[str, int]:
        """Read the result file into `extra`; a malformed one fails the run (exit 1)."""
        params, log = self.run.params, self.run.log
        value, error = values.read_result(params)
        if error is not None:
            log.error(error)
            return Status.FAILED, exitcodes.FAILURE
        if value is not None:
            import json

            extra["output_value"] = json.loads(json.dumps(value, default=str))
            if params.log_result_value:
                log.info(f"result value: {extra['output_value']!r}")
        return Status.SUCCEEDED, exitcodes.SUCCESS

    # -- the final report's time, and the reporter's --------------------------------------

    def cap_report_wait(self, seconds: float) -> None:
        if self.report_cap is not None:
            self.report_cap.cancel()
        self.report_cap = self.run.deadlines.after(seconds, "final report cap",
                                                   self._report_timed_out)

    def _report_timed_out(self) -> None:
        self.run.log.error("the final status could not be delivered in time; exiting without it")
        self.release_reporter(kill=True)

    def end_reporting(self) -> None:
        """The final report is done (or given up on): let the reporter go."""
        self.release_reporter(kill=False)

    def release_reporter(self, *, kill: bool) -> None:
        """Close the reporter's pipe (its cue to exit; DONE once it is reaped), or kill it
        (DONE at once: SIGKILL cannot be caught, so it is gone whether or not we stay to
        reap it — whoever inherits it, init or a subreaper, does)."""
        run = self.run
        run.reporter_released = True
        if kill:
            run.reporter.kill()
        else:
            run.reporter.lost()
        if kill or run.reporter_exited or run.reporter.pid is None:
            run.phase = Phase.DONE
        else:
            run.deadlines.after(REPORTER_EXIT_GRACE, "reporter exit", self._force_done)

    def _force_done(self) -> None:
        self.run.reporter.kill()
        self.run.phase = Phase.DONE

    def _log_summary(self, status: str, exit_code: int) -> None:
        run = self.run
        attempt = run.attempt
        failed = (f"exceeded its memory limit of {attempt.memory_exceeded[1] / MIB:.1f} MiB"
                  if attempt is not None and attempt.memory_exceeded is not None
                  else f"failed with {exitcodes.describe(exit_code)}")
        outcome = {
            Status.SUCCEEDED: "succeeded",
            Status.FAILED: failed,
            Status.TERMINATED_AFTER_TIME_OUT: "timed out",
            Status.ABORTED: "was aborted" + (f" by {signal_name(run.stop_signal)}"
                                             if run.stop_signal else ""),
        }[status]
        limit = run.params.max_attempts
        attempts = (f"attempt {run.attempts} of {limit if limit else 'unlimited'}"
                    if run.attempts else "not started")
        elapsed = time.monotonic() - run.started
        cost = (f"; attempt {attempt.number}: {attempt.usage.describe()}"
                if attempt is not None and attempt.pid and attempt.exit_code is not None
                else "")
        run.log.info(f"Task '{run.params.display_name}' {outcome}: exit code {exit_code}, "
                     f"{attempts}, {elapsed:.3f} s in total{cost}")


def _utc_now() -> str:
    # Imported here: an offline run never needs a timestamp, so it never loads the module.
    from pwsup.util.timefmt import utc_now

    return utc_now()
