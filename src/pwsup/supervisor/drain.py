"""The command's captured output, passed through by the parent once the reporter is gone.

With `--log-capture-lines`, the command writes into pipes the reporter reads (it tees the
lines to pwsup's stdout and stderr and keeps a tail for the report). If the reporter dies
for good — its restarts used up — nobody would read those pipes: once they filled, the
command would block on its next write, held up by pwsup. So the parent takes over: it
copies whatever arrives to its own stdout and stderr, as the reporter did.

It never blocks doing so. A pipe is read only when its destination can take a write at
once (poll says so), and at most PIPE_BUF bytes, which a pipe that has room takes whole;
when pwsup's own stdout is slow, the command waits for it exactly as it would without
pwsup in between — held up by its reader, not by pwsup.
"""

from __future__ import annotations

import os

from pwsup.supervisor import procs
from pwsup.util.waiting import wait

CHUNK = 4096
"""PIPE_BUF on Linux: a write of this much to a pipe that poll() says has room never blocks."""


class OutputDrain:
    """Copies each capture pipe (read end) to its destination (1 or 2) until EOF."""

    def __init__(self, sources: tuple[int, int]) -> None:
        self.routes = {sources[0]: 1, sources[1]: 2}
        """Capture pipe → the parent's own descriptor it goes to."""
        for source in sources:
            os.set_blocking(source, False)
        self.idle: set[int] = set()
        """Sources found empty by the last read (so `finish` can stop)."""

    def split(self) -> tuple[list[int], set[int]]:
        """(sources to read now, destinations to wait for): a source is read only when its
        destination can take a write at once; the others wait for POLLOUT. (A broken or
        closed destination counts as writable: the write fails, the output is lost, and
        nothing spins.)"""
        targets = set(self.routes.values())
        try:
            writable = set(wait(write=targets, timeout=0)[1])
        except (OSError, ValueError):
            writable = targets
        ready = [source for source, target in self.routes.items() if target in writable]
        return ready, targets - writable

    def finish(self, chunks: int = 256) -> None:
        """At the end of the run: pass on what the pipes still hold (at most `chunks`
        chunks, and only while the destinations take it at once), then close them."""
        for _ in range(chunks):
            ready = [source for source in self.split()[0] if source not in self.idle]
            if not ready:
                break
            for source in ready:
                self.copy(source)
        self.close_all()

    def copy(self, source: int) -> None:
        """Move one chunk from `source` to its destination; close the route at EOF. A
        destination that is gone (closed, a broken pipe) just loses the output."""
        try:
            data = os.read(source, CHUNK)
        except BlockingIOError:
            self.idle.add(source)
            return
        except OSError:
            data = b""
        self.idle.discard(source)
        if not data:
            self.close(source)
            return
        try:
            os.write(self.routes[source], data)
        except OSError:
            pass

    def close(self, source: int) -> None:
        if self.routes.pop(source, None) is not None:
            procs.close_quietly(source)

    def close_all(self) -> None:
        for source in list(self.routes):
            self.close(source)
