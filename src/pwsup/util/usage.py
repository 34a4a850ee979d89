"""What one attempt cost: CPU time, peak memory and wall time of the whole process tree.

Why a value of its own: the same figures travel to the exit log line, the final report to
the server, run_isolated's caller and IsolatedPool's futures, so they are measured once
(from `wait4`/`getrusage`, the way `/usr/bin/time -v` measures) and handed around as this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import resource

__all__ = ["Usage"]


@dataclass(frozen=True)
class Usage:
    """The cost of one attempt.

    `user_seconds` and `system_seconds` cover the process and every descendant it reaped
    (the kernel adds a reaped child's times to its parent's children times). `max_rss_bytes`
    is the peak resident set of the largest single process among them, as ru_maxrss and
    `/usr/bin/time` report it: not a sum over processes that ran at the same time."""

    user_seconds: float
    system_seconds: float
    max_rss_bytes: int
    wall_seconds: float

    @classmethod
    def of(cls, rusage: resource.struct_rusage, wall_seconds: float) -> Usage:
        """From a `wait4`/`getrusage` record (Linux gives ru_maxrss in KiB)."""
        return cls(rusage.ru_utime, rusage.ru_stime, rusage.ru_maxrss * 1024, wall_seconds)

    def as_dict(self) -> dict[str, float | int]:
        """Plain JSON-able figures, seconds rounded to microseconds."""
        return {
            "user_seconds": round(self.user_seconds, 6),
            "system_seconds": round(self.system_seconds, 6),
            "max_rss_bytes": self.max_rss_bytes,
            "wall_seconds": round(self.wall_seconds, 6),
        }

    def describe(self) -> str:
        """One log-line fragment, e.g. `cpu 0.012s user + 0.004s sys, peak RSS 9.8 MiB,
        wall 1.003s`."""
        return (f"cpu {self.user_seconds:.3f}s user + {self.system_seconds:.3f}s sys, "
                f"peak RSS {self.max_rss_bytes / 1048576:.1f} MiB, wall {self.wall_seconds:.3f}s")
