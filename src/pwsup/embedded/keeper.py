"""The keeper: ends what run_isolated's workers leave when their caller is killed outright.

run_isolated stops fn's processes itself after a timeout, a crash or a Ctrl-C. A caller that
is SIGKILLed or chosen by the out-of-memory killer cannot: its worker dies with it
(PR_SET_PDEATHSIG), but what fn started — the rest of the worker's process group, and what
left it with setsid() or a double fork — would run on with nobody to stop it.

```
 caller                                    keeper (forked once per caller process)
 ──────                                    ──────────────────────────────────────
 pipe(); fork ───────────────────────────▶ setsid(); stdio to /dev/null; every other fd closed
 worker (fork): "+cookie group grace" ───▶ remembers it            (written before fn runs)
 call over, worker reaped: "-cookie" ────▶ forgets it
 caller dies: the kernel closes its end ─▶ EOF: SIGTERM to what is remembered, the call's
                                           grace period, SIGKILL (as WorkerHandle.stop would);
                                           then exits. Nothing remembered: exits at once.
```

Why a process of its own, and why this shape:

- **Only a process that outlives the caller can act after SIGKILL**, and EOF on a pipe whose
  only writer is the caller is the one event that a killed process cannot fail to send.
- **The worker registers itself, before fn runs**, on a copy of the pipe's write end that it
  closes right after: nothing fn starts can be unregistered, and nothing fn starts holds the
  pipe open (which would hide the caller's death).
- **Forked, not executed**: it needs nothing but os-level calls, starts in a fork's time, and
  works wherever run_isolated does (a one-file artifact, an embedded interpreter whose
  `sys.executable` is not Python). It holds the caller's memory copy-on-write; once the caller
  is gone that memory is freed when the keeper exits, at most a grace period later.
- **Its own session**: a Ctrl-C or SIGHUP for the caller's terminal is not for it.
- A keeper that dies (killed by hand) is noticed at the next write (EPIPE) and replaced at
  the next call; a child the caller forks (not a worker, also while another thread is
  forking one) closes its copy of the pipe (`os.register_at_fork`), so only the caller's
  death is what the keeper waits for.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pwsup.supervisor import forking, procs

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["close", "handing_off", "register", "withdraw"]

_LINE_LIMIT = 256
"""No line the caller writes is longer; a longer one is not from the caller and is dropped."""
_READ_CHUNK = 4096
_EXIT_WAIT = 0.5
"""At the caller's exit, how long it waits to reap a keeper that has nothing to do."""


class _Keeper:
    """The caller's end: the keeper's pid and the pipe's write end."""

    def __init__(self, pid: int, write_fd: int) -> None:
        self.pid = pid
        self.write_fd = write_fd


_keeper: _Keeper | None = None
_lock = threading.Lock()
_handing_off: int | None = None
"""The thread forking a worker, while it does: the child of that fork keeps its copy of the
pipe to register on; every other child of the caller closes it, also one another thread
forks meanwhile (a fork's child runs on in the thread that forked, with the same ident)."""


# -- the caller's side --------------------------------------------------------------------------


@contextmanager
def handing_off() -> Iterator[int | None]:
    """Around the fork of a worker: yields the descriptor the worker registers on (None when
    no keeper could be started: out of processes; the call still runs, unguarded against
    the caller's SIGKILL)."""
    global _handing_off
    with _lock:
        fd = _started()
        _handing_off = threading.get_ident()
        try:
            yield fd
        finally:
            _handing_off = None


def withdraw(cookie: str) -> None:
    """The call with `cookie` is over and its worker reaped: the keeper forgets it."""
    with _lock:
        if _keeper is not None:
            _send(_keeper, f"-{cookie}\n".encode())


def _started() -> int | None:
    """The running keeper's write end, starting a keeper first if there is none (or the last
    one is gone)."""
    global _keeper
    if _keeper is None:
        try:
            _keeper = _start()
        except forking.ForkError:
            return None
    return _keeper.write_fd


def _start() -> _Keeper:
    read_fd, write_fd = os.pipe()
    try:
        pid = forking.fork(lambda _mask: _keep(read_fd), what="the run_isolated keeper",
                           close_fds=(write_fd,))
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    return _Keeper(pid, write_fd)


def _send(keeper: _Keeper, line: bytes) -> None:
    """Write one line; a keeper that is gone is reaped and forgotten (a new one starts at
    the next call)."""
    global _keeper
    try:
        os.write(keeper.write_fd, line)
    except OSError:
        _forget(keeper)
        _keeper = None


def _forget(keeper: _Keeper) -> None:
    os.close(keeper.write_fd)
    try:
        os.waitpid(keeper.pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _after_fork_in_child() -> None:
    """A child of the caller is not the caller: unless it is a worker being handed the
    pipe, it closes its copy, and starts a keeper of its own if it ever calls run_isolated."""
    global _keeper, _lock, _handing_off
    _lock = threading.Lock()
    if _keeper is not None and _handing_off != threading.get_ident():
        procs.close_quietly(_keeper.write_fd)
    _keeper, _handing_off = None, None  # a worker's copy is closed by `register`


def close() -> None:
    """Close the pipe (at the caller's exit, or by hand): a keeper with nothing to do exits at
    once and is reaped here rather than left to init. One still ending a call's leftovers (a
    thread was inside run_isolated) is not waited for. The next call starts a new one."""
    global _keeper
    with _lock:
        keeper, _keeper = _keeper, None
    if keeper is not None:
        os.close(keeper.write_fd)
        procs.wait_reaped(keeper.pid, _EXIT_WAIT)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(close)


# -- the worker's side --------------------------------------------------------------------------


def register(fd: int | None, cookie: str, group: int, grace: float) -> None:
    """In a worker, before fn runs: tell the keeper what to end if the caller dies, then
    close the descriptor (fn's processes must not hold the pipe open)."""
    if fd is None:
        return
    try:
        os.write(fd, f"+{cookie} {group} {grace!r}\n".encode())
    except OSError:
        pass  # the keeper is gone: the caller replaces it at its next call
    finally:
        procs.close_quietly(fd)


# -- the keeper ----------------------------------------------------------------------------------


def _keep(read_fd: int) -> int:
    """The keeper's life: remember registrations until EOF, then end what is remembered."""
    _detach(read_fd)
    calls: dict[str, tuple[int, float]] = {}
    pending = b""
    while chunk := _read(3):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _apply(calls, line)
        if len(pending) > _LINE_LIMIT:
            pending = b""
    _end(calls)
    return 0


def _detach(read_fd: int) -> None:
    """A session of its own; the pipe on fd 3, stdio on /dev/null, every other fd closed
    (the caller's sockets and pipes must not live on in the keeper)."""
    os.setsid()
    if read_fd != 3:
        os.dup2(read_fd, 3)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(4, os.sysconf("SC_OPEN_MAX"))
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _read(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, _READ_CHUNK)
        except InterruptedError:
            continue
        except OSError:
            return b""


def _apply(calls: dict[str, tuple[int, float]], line: bytes) -> None:
    """`+cookie group grace` remembers a call, `-cookie` forgets it; anything else is
    dropped."""
    try:
        text = line.decode("ascii")
        if text.startswith("-"):
            calls.pop(text[1:], None)
        elif text.startswith("+"):
            cookie, group, grace = text[1:].split(" ")
            calls[cookie] = (int(group), min(max(float(grace), 0.0), 3600.0))
    except ValueError:
        pass


def _end(calls: dict[str, tuple[int, float]]) -> None:
    """The caller is gone: SIGTERM to every remembered call's group and cookie holders at
    once, each call's grace period, then SIGKILL to what is left."""
    from pwsup.supervisor.sweep import Sweep

    start = time.monotonic()
    sweeps = [(Sweep(group=group, cookie=cookie), grace)
              for cookie, (group, grace) in calls.items()]
    for sweep, _grace in sweeps:
        sweep.signal(signal.SIGTERM)
    for sweep, grace in sweeps:
        try:
            if not sweep.wait(start + grace, signal.SIGTERM):
                sweep.kill()
        finally:
            sweep.close()
