"""What one attempt cost: CPU time, peak memory and wall time of the whole process tree.

Why a value of its own: the same figures travel to the exit log line, the final report to
the server, run_isolated's caller and IsolatedPool's futures, so they are measured once
(from `wait4`/`getrusage`, the way `/usr/bin/time -v` measures) and handed around as this.

A plain slotted class rather than a dataclass: the parent builds one on its exit path, and
the parent's imports keep `dataclasses` and `typing` out (start-up and exit latency are
measured figures).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import resource

__all__ = ["Usage"]

MIB = 1024 * 1024


class Usage:
    """The cost of one attempt (immutable, compared and hashed by its four figures).

    `user_seconds` and `system_seconds` cover the process and every descendant it reaped
    (the kernel adds a reaped child's times to its parent's children times). `max_rss_bytes`
    is the peak resident set of the largest single process among them, as ru_maxrss and
    `/usr/bin/time` report it: not a sum over processes that ran at the same time."""

    __slots__ = ("max_rss_bytes", "system_seconds", "user_seconds", "wall_seconds")

    user_seconds: float
    system_seconds: float
    max_rss_bytes: int
    wall_seconds: float

    def __init__(self, user_seconds: float, system_seconds: float, max_rss_bytes: int,
                 wall_seconds: float) -> None:
        set_ = object.__setattr__
        set_(self, "user_seconds", user_seconds)
        set_(self, "system_seconds", system_seconds)
        set_(self, "max_rss_bytes", max_rss_bytes)
        set_(self, "wall_seconds", wall_seconds)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Usage is immutable: cannot set {name!r}")

    def _key(self) -> tuple[float, float, int, float]:
        return (self.user_seconds, self.system_seconds, self.max_rss_bytes, self.wall_seconds)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Usage) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Usage(user_seconds={self.user_seconds!r}, "
                f"system_seconds={self.system_seconds!r}, "
                f"max_rss_bytes={self.max_rss_bytes!r}, wall_seconds={self.wall_seconds!r})")

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
                f"peak RSS {self.max_rss_bytes / MIB:.1f} MiB, wall {self.wall_seconds:.3f}s")
