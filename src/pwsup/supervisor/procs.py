"""The thin Linux seam: prctl, pidfds, signalling, the process tree and the run's cookie.

Every "is it still there?" question about processes is answered here, the same way each
time: ESRCH means "already gone" and is never an error, and a pid is only signalled while
it is known to be ours (a child not yet reaped, a descendant just listed, or a process
whose environment was just seen to carry the run's cookie).

The cookie: ancestry alone cannot find everything a command started. A daemon that called
setsid() is in another process group, and once its supervisor is gone (or below a
subreaper that died) it is re-parented out of pwsup's tree. Its environment, though, is
inherited: the command gets a random token (`new_cookie`), and `cookie_holders` finds every
process whose environment still carries it, however it was started.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import resource
    from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_prctl_function: Any = None


def _load_prctl() -> Any:
    """libc's prctl, through `_ctypes`, the C half of `ctypes`.

    `import ctypes` costs ~1.5 ms of every start of pwsup (it builds dozens of classes and
    imports `struct`); calling one C function needs three small declarations: the return
    type (C int), a handle on the process's own symbols, and a cdecl function pointer that
    keeps errno (what `ctypes.CDLL(None, use_errno=True).prctl` builds)."""
    import _ctypes

    class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]  # not generic at run time
        _type_ = "i"

    class OwnSymbols:
        _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # None: ours

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    return Function(("prctl", OwnSymbols))  # type: ignore[arg-type]  # any `_handle` holder


def _prctl(option: int, value: int) -> bool:
    global _prctl_function
    try:
        if _prctl_function is None:
            _prctl_function = _load_prctl()
        return bool(_prctl_function(option, value, 0, 0, 0) == 0)
    except (OSError, ImportError, AttributeError):  # e.g. no descriptor left
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
            fd = os.open(f"/proc/{pid}/task/{tid}/children", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:  # raw reads: this runs on every exit, and a buffered file costs 5 more syscalls
            data = b""
            while chunk := os.read(fd, 65536):
                data += chunk
        except OSError:
            continue
        finally:
            os.close(fd)
        result.extend(int(p) for p in data.split())
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


COOKIE_BYTES = 16
"""Random bytes in a run's cookie (shown as hex): no other run, nor anything else in an
environment, will hold the same token by chance."""
ENVIRON_READ_LIMIT = 16 * 1024
"""At most this much of each process's environment is read when looking for a cookie, so a
scan costs the same whatever the processes on the machine carry; the command's environment
has the cookie first, and descendants that keep their environment's order keep it there."""


def new_cookie() -> str:
    """A fresh token to mark the command's environment with (a few bytes of os.urandom:
    the parent's start stays cheap)."""
    return os.urandom(COOKIE_BYTES).hex()


def _environ_holds(pid: int, token: bytes) -> bool:
    """Whether the first ENVIRON_READ_LIMIT bytes of `pid`'s environment contain `token`.
    False for a process we may not read (another user's), a zombie, or one already gone."""
    try:
        fd = os.open(f"/proc/{pid}/environ", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    data = b""
    try:
        while len(data) < ENVIRON_READ_LIMIT:
            chunk = os.read(fd, ENVIRON_READ_LIMIT - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        os.close(fd)
    return token in data


def cookie_holders(cookie: str, exclude: frozenset[int] = frozenset()) -> list[int]:
    """Every process (but this one and `exclude`) whose environment carries `cookie`.

    The environment seen is the one a process was exec'd with: pwsup's own processes, and a
    forked worker that only changed `os.environ`, never show the cookie; the programs the
    command and its descendants run do."""
    token = cookie.encode("ascii")
    skip = exclude | {os.getpid()}
    found: list[int] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if name.isdigit() and int(name) not in skip and _environ_holds(int(name), token):
            found.append(int(name))
    return found


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, from /proc/<pid>/stat. A zombie
    still counts for killpg(), but has nothing left to terminate: its reaper is elsewhere."""
    found: list[int] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:  # raw: no file object for an interrupt (a second Ctrl-C) to leave unclosed
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fields = os.read(fd, 4096).rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        finally:
            os.close(fd)
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in b"ZXx":
            found.append(int(name))
    return found


def claim(pid: int, cookie: str) -> int | None:
    """A pidfd for `pid` if it still carries `cookie` once the pidfd is open, else None.
    Checked in that order, the pidfd cannot stand for a process that reused the pid after
    the scan (a holder that died meanwhile makes signalling it fail, harmlessly)."""
    fd = pidfd_open(pid)
    if fd is not None and not _environ_holds(pid, cookie.encode("ascii")):
        close_quietly(fd)
        return None
    return fd


def signal_holder(pid: int, cookie: str, signum: int) -> int | None:
    """Signal `pid` if it still carries `cookie`; return its pidfd (to wait on and signal
    again), or None when it is gone or the kernel has no pidfds. Without pidfds the pid is
    signalled right after its cookie is checked again: a pid reused in between is the one
    case pwsup could signal a stranger, and only on kernels before 5.3."""
    if getattr(os, "pidfd_open", None) is None:
        if _environ_holds(pid, cookie.encode("ascii")):
            send_signal(pid, signum, group=False)
        return None
    fd = claim(pid, cookie)
    if fd is not None:
        signal_pidfd(fd, signum)
    return fd


def signal_pidfd(fd: int, signum: int) -> bool:
    """Signal the process a pidfd stands for; False if it has exited."""
    from pwsup.util.rawsignal import signal

    try:
        signal.pidfd_send_signal(fd, signum)
    except OSError:  # ESRCH: exited (a zombie counts); EPERM: not ours after all
        return False
    return True


def exited(fd: int) -> bool:
    """Whether the process of a pidfd has exited (its pidfd is readable)."""
    from pwsup.util.waiting import wait

    return bool(wait([fd], timeout=0)[0])


def wait_reaped(pid: int, timeout: float) -> int | None:
    """Reap the child `pid`, waiting at most `timeout` seconds for it to exit (on its
    pidfd, else polling every millisecond): its wait status, or None if it is still there
    (a process in uninterruptible sleep outlives even SIGKILL for a while) or was already
    reaped."""
    import time

    from pwsup.util.rawsignal import HeldInterrupt
    from pwsup.util.waiting import wait

    with HeldInterrupt():  # no Ctrl-C between the open and the `try` that closes it
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
                wait([pidfd], timeout=left)
    finally:
        close_quietly(pidfd)


def reap_any() -> tuple[int, int, resource.struct_rusage] | None:
    """Reap one exited child: (pid, wait status, its resource usage), or None when none is
    waiting. `wait4` costs what `waitpid` costs, and its usage covers the child and every
    descendant the child itself reaped (what an attempt cost)."""
    try:
        pid, status, usage = os.wait4(-1, os.WNOHANG)
    except ChildProcessError:
        return None
    return (pid, status, usage) if pid else None


def close_quietly(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
