"""The reporter's sink protocol: where the messages from the parent end up.

`Sink` is the offline sink and the base of the others: it answers a start with a permit and
a final report with "not delivered (offline)", and reports nowhere. `api_sink.ApiSink`
reports to a CloudReactor API server. The reporter picks one per run (`reporter.make_sink`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pwsup.ipc import messages as m

if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.supervisor.deadlines import Deadlines
    from pwsup.supervisor.seed import ReporterSeed
    from pwsup.util.log import Log

    Replies = Callable[[m.Message], None]


class Sink:
    """Where the reporter's messages go. This one is offline: it reports nowhere."""

    def __init__(self, seed: ReporterSeed, reply: Replies, log: Log,
                 deadlines: Deadlines) -> None:
        self.seed = seed
        self.reply = reply
        self.log = log
        self.deadlines = deadlines

    def fds(self) -> dict[int, Callable[[], None]]:
        """Extra fds to poll and what to do when each is readable."""
        return {}

    def handle(self, message: m.Message) -> None:
        if isinstance(message, m.Begin):
            self.reply(m.Permit(None))
        elif isinstance(message, m.Finish):
            self.reply(m.FinishDelivered(delivered=False, detail="offline"))

    def final_pending(self) -> bool:
        """Whether a final report was handed over and is not delivered (or given up) yet."""
        return False

    def close(self) -> None:
        """The run is over (or the parent is gone): release resources."""
