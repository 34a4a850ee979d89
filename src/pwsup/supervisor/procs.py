"""The thin Linux seam: prctl, pidfds, signalling and the process tree.

Every "is it still there?" question about processes is answered here, the same way each
time: ESRCH means "already gone" and is never an error, and a pid is only signalled while
it is known to be ours (a child not yet reaped, or a descendant just listed).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc: Any = None


def _prctl(option: int, value: int) -> bool:
    global _libc
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        return bool(_libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, ImportError):  # e.g. no descriptor left to load the library with
        return False


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to us (so we can reap and clean them up)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send `signum` to this process when its parent dies."""
    return _prctl(PR_SET_PDEATHSIG, signum)


def pidfd_open(pid: int) -> int | None:
    """A pidfd for `pid` (readable once it exits), or None where unsupported or gone."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def send_signal(pid: int, signum: int, *, group: bool) -> bool:
    """Signal a process or its whole group. False if nothing was there to signal."""
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/<pid>/task/*/children."""
    result: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return result
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                result.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return result


def descendants(pid: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    """Every descendant of `pid`, parents before children, skipping `exclude` subtrees."""
    found: list[int] = []
    queue = [c for c in child_pids(pid) if c not in exclude]
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(c for c in child_pids(current) if c not in exclude)
    return found


def wait_reaped(pid: int, timeout: float) -> int | None:
    """Reap the child `pid`, waiting at most `timeout` seconds for it to exit (on its
    pidfd, else polling every millisecond): its wait status, or None if it is still there
    (a process in uninterruptible sleep outlives even SIGKILL for a while) or was already
    reaped."""
    import select
    import time

    pidfd = pidfd_open(pid)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if done:
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if pidfd is None:
                time.sleep(min(left, 0.001))
            else:
                select.select([pidfd], [], [], left)
    finally:
        close_quietly(pidfd)


def reap_any() -> tuple[int, int] | None:
    """Reap one exited child: (pid, wait status), or None when none is waiting."""
    try:
        pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return None
    return (pid, status) if pid else None


def close_quietly(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
