"""What a (re)started reporter knows from the parent's memory at fork time.

The parent keeps the run's reporting state here (the execution, the running attempt, a
pending start or final report); a reporter forked later starts from it, so nothing of it
has to cross the pipe.
"""

from __future__ import annotations

from pwsup.supervisor.procs import new_cookie

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pwsup.config.params import Params
    from pwsup.ipc import messages as m


class ReporterSeed:
    """What a (re)started reporter knows from the parent's memory at fork time."""

    def __init__(self, params: Params, title: str) -> None:
        self.params = params
        self.title = title
        self.execution_uuid: str | None = None
        self.pgid: int | None = None
        """The running attempt's process group (or pid), to terminate if the parent dies."""
        self.group_signals = params.process_group_termination
        self.cookie = new_cookie()
        """The run's cookie, in the command's environment: what carries it is the run's, to
        terminate with it (also once it left the group or the tree)."""
        self.attempt: tuple[int, int] | None = None
        """(attempt number, pid) of the running attempt."""
        self.embedded = False
        """Embedded mode: the reporter serves one run after another (the caller's calls)."""
        self.lambda_context: object = None
        """The AWS Lambda handler's context (embedded mode), for runtime metadata."""
        self.environ: dict[str, str] | None = None
        """The environment the run sees when it is not the reporter's own (embedded mode's
        `env_override`): runtime metadata is detected from it."""
        self.capture: tuple[int, int] | None = None
        """Read ends of the command's stdout and stderr pipes, when its output is captured."""
        self.begin: m.Begin | None = None
        """A start request the server has not answered yet."""
        self.ended: m.AttemptEnded | None = None
        """The last attempt's end (what it cost), for a final report a restarted reporter
        delivers."""
        self.finish: m.Finish | None = None
