"""The words every part of the parent shares: the run's phase, its final status, one attempt,
and `RunState`, the record the loop and its parts read and write.

Each part of the parent (attempts, leftovers, the secrets refresh, the reporter watch, the
ending) keeps its own state to itself; what more than one of them must see lives here, in
one place, so that a reader can tell at a glance what a decision may depend on.
"""

from __future__ import annotations

import os
import time

from pwsup import exitcodes
from pwsup.config import values
from pwsup.supervisor import procs
from pwsup.supervisor.deadlines import Deadlines
from pwsup.supervisor.link import ReporterLink
from pwsup.supervisor.seed import ReporterSeed
from pwsup.supervisor.signals import SignalSetup
from pwsup.util.usage import Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    import resource
    from collections.abc import Mapping, Sequence
    from typing import ClassVar, Final

    from pwsup.config.params import Params
    from pwsup.supervisor.deadlines import Deadline
    from pwsup.supervisor.drain import OutputDrain
    from pwsup.util.log import Log


class Phase:
    """A phase of the run: one instance each, compared with `is`.

    Not an `enum.Enum`: importing `enum` costs milliseconds of every start of pwsup (see
    `util.rawsignal`), and these need nothing of it."""

    __slots__ = ("meaning", "name")

    STARTING: ClassVar[Phase]
    RUNNING: ClassVar[Phase]
    CLEANING: ClassVar[Phase]
    WAITING: ClassVar[Phase]
    REPORTING: ClassVar[Phase]
    DONE: ClassVar[Phase]

    def __init__(self, name: str, meaning: str) -> None:
        self.name = name
        self.meaning = meaning

    def __repr__(self) -> str:
        return f"<Phase.{self.name}: {self.meaning}>"


Phase.STARTING = Phase("STARTING", "waiting for the server's permission to start")
Phase.RUNNING = Phase("RUNNING", "running the command")
Phase.CLEANING = Phase("CLEANING", "terminating what the command left behind")
Phase.WAITING = Phase("WAITING", "waiting to retry")
Phase.REPORTING = Phase("REPORTING", "delivering the final report")
Phase.DONE = Phase("DONE", "done")


class Status:
    """Final statuses, as the CloudReactor API names them: plain strings (not an enum,
    like `Phase`)."""

    SUCCEEDED: Final = "SUCCEEDED"
    FAILED: Final = "FAILED"
    TERMINATED_AFTER_TIME_OUT: Final = "TERMINATED_AFTER_TIME_OUT"
    ABORTED: Final = "ABORTED"


class Attempt:
    """One run of the command. `pid` is 0 when it could not be started."""

    __slots__ = ("escalation", "exit_code", "max_rss", "memory_check", "memory_exceeded",
                 "number", "pid", "pidfd", "started", "system", "timed_out", "timeout",
                 "user", "wall")

    def __init__(self, number: int, pid: int, *, pidfd: int | None = None,
                 exit_code: int | None = None, started: float = 0.0) -> None:
        self.number = number
        self.pid = pid
        self.pidfd = pidfd
        self.exit_code = exit_code
        self.timed_out = False
        self.timeout: Deadline | None = None
        self.escalation: Deadline | None = None
        self.started = started
        """When it started, on the monotonic clock."""
        self.user = self.system = self.wall = 0.0
        self.max_rss = 0
        """What it cost so far (`usage`): the command's wait4 figures, plus those of the
        orphans of its tree pwsup reaped as a subreaper while it ran or was cleaned up."""
        self.memory_check: Deadline | None = None
        self.memory_exceeded: tuple[int, int] | None = None
        """(resident bytes seen, the limit) once --memory-limit ended the attempt."""

    @property
    def running(self) -> bool:
        return self.pid > 0 and self.exit_code is None

    @property
    def ended_by_limit(self) -> bool:
        """A limit of pwsup's (time, memory) decided the attempt, not the command."""
        return self.timed_out or self.memory_exceeded is not None

    def add_usage(self, rusage: resource.struct_rusage) -> None:
        """Count a reaped process of this attempt's tree (ru_maxrss is in KiB on Linux)."""
        self.user += rusage.ru_utime
        self.system += rusage.ru_stime
        self.max_rss = max(self.max_rss, rusage.ru_maxrss * 1024)

    @property
    def usage(self) -> Usage:
        return Usage(self.user, self.system, self.max_rss, self.wall)


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
        self.earlier_usage = Usage(0.0, 0.0, 0, 0.0)
        """What the attempts before the current one cost, together."""

    def next_attempt(self, attempt: Attempt) -> None:
        """`attempt` is the run's current one now; the previous one's cost is counted."""
        previous = self.attempt
        if previous is not None:
            self.earlier_usage = _added(self.earlier_usage, previous.usage)
        self.attempt = attempt

    @property
    def total_usage(self) -> Usage:
        """What every attempt so far cost together: CPU and wall times added up, the
        largest peak RSS."""
        if self.attempt is None:
            return self.earlier_usage
        return _added(self.earlier_usage, self.attempt.usage)

    def signal_command(self, attempt: Attempt, signum: int) -> None:
        procs.send_signal(attempt.pid, signum, group=self.params.process_group_termination)

    def take_terminal_back(self) -> None:
        if self.tty is not None:
            try:
                os.tcsetpgrp(self.tty, os.getpgrp())
            except OSError:
                pass


def _added(a: Usage, b: Usage) -> Usage:
    return Usage(a.user_seconds + b.user_seconds, a.system_seconds + b.system_seconds,
                 max(a.max_rss_bytes, b.max_rss_bytes), a.wall_seconds + b.wall_seconds)
