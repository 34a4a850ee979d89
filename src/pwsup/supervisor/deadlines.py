"""Deadlines on the monotonic clock: the event loop's only notion of time.

Every timed behaviour of the parent (attempt time limits, SIGKILL escalation, retry delays,
reporter restarts, the cap on the final report) is a deadline here, checked by the loop
after each wake-up. Nothing ever sleeps, so a signal or a child's exit is handled as soon
as it happens, whatever is scheduled.
"""

from __future__ import annotations

import heapq
import itertools
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

LONGEST_WAIT = 86400.0
"""The longest single wait `next_timeout` asks for. `poll()` takes milliseconds in a C int
(24.8 days at most): a longer deadline (a time limit of a year) is waited for in pieces,
each wake-up finding nothing due."""


class Deadline:
    """One scheduled action. Ordered by time, then by scheduling order."""

    __slots__ = ("action", "cancelled", "name", "seq", "when")

    def __init__(self, when: float, seq: int, name: str, action: Callable[[], None]) -> None:
        self.when, self.seq, self.name, self.action = when, seq, name, action
        self.cancelled = False

    def __lt__(self, other: Deadline) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def __repr__(self) -> str:
        return f"Deadline({self.name!r}, when={self.when:.3f}, cancelled={self.cancelled})"

    def cancel(self) -> None:
        self.cancelled = True


class Deadlines:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[Deadline] = []
        self._seq = itertools.count()

    def after(self, delay: float, name: str, action: Callable[[], None]) -> Deadline:
        deadline = Deadline(self.clock() + delay, next(self._seq), name, action)
        heapq.heappush(self._heap, deadline)
        return deadline

    def next_timeout(self) -> float | None:
        """Seconds until the earliest live deadline (0 if due; at most LONGEST_WAIT), or None
        if there is none."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        if not self._heap:
            return None
        return min(LONGEST_WAIT, max(0.0, self._heap[0].when - self.clock()))

    def fire_due(self) -> None:
        """Run the actions of every deadline that has passed, earliest first."""
        now = self.clock()
        while self._heap and self._heap[0].when <= now:
            deadline = heapq.heappop(self._heap)
            if not deadline.cancelled:
                deadline.cancelled = True
                deadline.action()
