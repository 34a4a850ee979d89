"""What runs in the child between fork and exec, and how its failure gets back to us.

The command is started with fork + exec rather than `subprocess`: the parent is single
threaded (so fork is safe), and the child needs steps `subprocess` cannot express on every
supported Python: its own process group, the terminal's foreground, PR_SET_PDEATHSIG, and
the exact signal state pwsup was given. The order matters:

1. `forking.fork`: all signals blocked, the parent's handlers dropped, PR_SET_PDEATHSIG
   armed and the parent re-checked, the descriptors the command must not get closed;
2. (child) setpgid(0, 0) — the parent does the same for the child, so neither order races;
3. (child) take the terminal's foreground if pwsup had it (SIGTTOU is blocked, so allowed);
4. (child) restore dispositions, chdir, restore the original mask, exec.

An exec failure is reported through a close-on-exec pipe as `errno:message` (no pickle in
a half-made process), and the child leaves with `_exit(127)` for "not found" or
`_exit(126)` for "cannot execute", the shell's convention. EOF on that pipe with no data
means exec succeeded. `spawn` returns as soon as the child is forked and `confirm` reads
the pipe: what the parent does in between (its title, forking the watchdog) overlaps with
the child's exec, about a millisecond of every start.
"""

from __future__ import annotations

import errno
import os

from pwsup import exitcodes
from pwsup.errors import PwsupError
from pwsup.supervisor import forking

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from pwsup.supervisor.signals import SignalSetup


class SpawnRequest:
    """What to start and how."""

    __slots__ = ("argv", "close_fds", "cwd", "death_signal", "env", "foreground_tty",
                 "output")

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str, *,
                 foreground_tty: int | None, death_signal: int,
                 close_fds: tuple[int, ...] = (),
                 output: tuple[int, int] | None = None) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.foreground_tty = foreground_tty
        """The terminal fd whose foreground the command should get, or None."""
        self.death_signal = death_signal
        self.close_fds = close_fds
        """Fds the child must not keep before exec (not needed for close-on-exec ones)."""
        self.output = output
        """Pipes to use as the command's stdout and stderr (log capture), or None."""


class SpawnError(PwsupError):
    """The command could not be started; `exit_code` is 126 or 127."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_for_errno(number: int) -> int:
    return exitcodes.NOT_FOUND if number in (errno.ENOENT, errno.ENOTDIR) else \
        exitcodes.NOT_EXECUTABLE


class Spawned:
    """A forked command whose exec is not confirmed yet: `confirm` it before relying on it."""

    __slots__ = ("pid", "report_fd")

    def __init__(self, pid: int, report_fd: int) -> None:
        self.pid = pid
        self.report_fd: int | None = report_fd
        """The read end of the exec report pipe, until `confirm` has read it."""

    def confirm(self) -> None:
        """Wait for the exec: return once it succeeded, or reap the child and raise
        SpawnError. Idempotent."""
        fd, self.report_fd = self.report_fd, None
        if fd is None:
            return
        report = _read_all(fd)
        if report:
            os.waitpid(self.pid, 0)  # the child is exiting right now; reap it before reporting
            number_text, _, message = report.decode("utf-8", "replace").partition(":")
            number = int(number_text) if number_text.isdigit() else errno.ENOEXEC
            raise SpawnError(exit_code_for_errno(number), message)

    def discard(self) -> None:
        """Forget the report unread (the child is gone some other way)."""
        fd, self.report_fd = self.report_fd, None
        if fd is not None:
            os.close(fd)


def spawn(request: SpawnRequest, signals: SignalSetup) -> Spawned:
    """Fork the command in its own process group (ForkError, an OSError, when pwsup itself
    is out of processes or memory). Its exec is confirmed by `Spawned.confirm`."""
    err_read, err_write = os.pipe()
    try:
        pid = forking.fork(lambda _mask: _run_child(request, signals, err_write),
                           what="the command", death_signal=request.death_signal,
                           close_fds=(err_read, *request.close_fds))
    except BaseException:
        os.close(err_read)
        raise
    finally:
        os.close(err_write)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child already exec'd (EACCES) or exited (ESRCH); it set it itself
    return Spawned(pid, err_read)


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _run_child(request: SpawnRequest, signals: SignalSetup, err_write: int) -> NoReturn:
    """Everything the child does before exec, after `forking.fork`'s common steps (the
    parent-death signal among them). Never returns."""
    step = "setting up the command's process"
    try:
        os.setpgid(0, 0)
        if request.foreground_tty is not None:
            try:
                os.tcsetpgrp(request.foreground_tty, os.getpid())
            except OSError:
                pass  # the terminal went away: the command simply runs in the background
        if request.output is not None:
            os.dup2(request.output[0], 1)
            os.dup2(request.output[1], 2)
        signals.restore_in_child()
        step = f"changing to the directory {request.cwd!r}"
        os.chdir(request.cwd)
        signals.restore_mask_in_child()
        step = f"executing {request.argv[0]!r}"
        os.execvpe(request.argv[0], list(request.argv), request.env)
    except OSError as e:
        _report_and_exit(err_write, e.errno or errno.ENOEXEC, f"{step}: {e.strerror}")
    except BaseException as e:
        _report_and_exit(err_write, errno.ENOEXEC, f"{step}: {e!r}")
    os._exit(exitcodes.NOT_EXECUTABLE)  # unreachable: exec either replaced us or raised


def _report_and_exit(err_write: int, number: int, message: str) -> NoReturn:
    try:
        os.write(err_write, f"{number}:{message}".encode("utf-8", "replace"))
    finally:
        os._exit(exit_code_for_errno(number))
