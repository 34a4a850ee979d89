"""The words every part of the parent shares: the run's phase, its final status, one attempt,
and `RunState`, the record the loop and its parts read and write.

Each part of the parent (attempts, leftovers, the secrets refresh, the reporter watch, the
ending) keeps its own state to itself; what more than one of them must see lives here, in
one place, so that a reader can tell at a glance what a decision may depend on.
"""

from __future__ import annotations

import enum
import os
import time

from pwsup import exitcodes
from pwsup.config import values
from pwsup.supervisor import procs
from pwsup.supervisor.deadlines import Deadlines
from pwsup.supervisor.link import ReporterLink
from pwsup.supervisor.seed import ReporterSeed
from pwsup.supervisor.signals import SignalSetup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pwsup.config.params import Params
    from pwsup.supervisor.deadlines import Deadline
    from pwsup.supervisor.drain import OutputDrain
    from pwsup.util.log import Log


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


class RunState:
    """What the whole run knows, shared by the loop and every part of it.

    Each part is handed this record and the few other parts it calls on, so its reach is
    plain: the settings, the clock, the reporter's pipe, the phase, the attempt in hand, and
    the counts and reasons the final status is made of.
    """

    def __init__(self, params: Params, argv: Sequence[str], log: Log,
                 environ: Mapping[str, str]) -> None:
        self.params = params
        self.argv = list(argv)
        self.log = log
        self.environ = environ
        """The environment attempts start from (fresh secrets replace it before a retry)."""
        self.phase = Phase.STARTING
        self.deadlines = Deadlines()
        self.signals = SignalSetup()
        self.reporter = ReporterLink(
            ReporterSeed(params, f"pwsup reporter: {params.display_name}"), log)
        self.reporter_exited = False
        """The current reporter process has been reaped."""
        self.reporter_released = False
        """The final report is done or given up on: no reporter may start again."""
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
        self.subreaper = False
        """Whether pwsup is a child subreaper: then every orphan of the command's tree is
        re-parented to it, and its descendants are all there is to clean up."""
        self.output: tuple[int, int] | None = None
        """Write ends of the capture pipes handed to each attempt as stdout and stderr."""
        self.drain: OutputDrain | None = None
        """The captured output passed through by the parent, once the reporter is gone."""
        self.input = values.input_text(params, environ)

    def signal_command(self, attempt: Attempt, signum: int) -> None:
        procs.send_signal(attempt.pid, signum, group=self.params.process_group_termination)

    def take_terminal_back(self) -> None:
        if self.tty is not None:
            try:
                os.tcsetpgrp(self.tty, os.getpgrp())
            except OSError:
                pass
