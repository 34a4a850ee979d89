"""Signal handling for the parent: the wakeup-fd model, and undoing it in children.

Strategies considered:
- tini's model (block everything, `sigtimedwait` in the loop) cannot also wait on the
  reporter pipe and the child's pidfd in the same call, and the blocked mask would leak
  into every child unless each spawn path clears it.
- Handlers that act (log, kill, raise) run at arbitrary points of the main loop, which is
  how proc_wrapper ended up exiting mid-request from inside a handler.
- Chosen: no-op Python handlers plus `signal.set_wakeup_fd`. The C-level handler writes the
  signal number as one byte into a non-blocking pipe; the event loop polls that pipe with
  everything else and acts on each number in order. Nothing happens inside a handler.

What pwsup was given — each disposition it changes, and the signal mask — is recorded
before it changes anything, and `restore_in_child()` puts it back in a forked child before
it execs, so the command starts with exactly the signal state pwsup started with.
(Exceptions: SIGPIPE and SIGXFSZ, which the Python interpreter itself sets to ignored
before pwsup runs; they are reset to default, as `subprocess` does.)
"""

from __future__ import annotations

import os

from pwsup.util.rawsignal import signal, signal_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["FORWARDED", "STOPPING", "BlockedSignals", "SignalSetup", "StopWatch", "signal_name"]

FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGTERM)
"""Signals passed on to the command's process group."""

STOPPING = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
"""Signals that also end the run: no more retries; SIGKILL after the grace period."""

_HANDLED = (*FORWARDED, signal.SIGCHLD)
_IGNORED_BY_PWSUP = (signal.SIGTTIN, signal.SIGTTOU)
"""Ignored like tini does, so pwsup can hand the terminal to the command and take it back."""
_RESET_BY_PYTHON = (signal.SIGPIPE, signal.SIGXFSZ)


def _noop(signum: int, frame: Any) -> None:
    """The Python-level handler does nothing: the wakeup byte carries the signal."""


def _as_disposition(handler: Any) -> Any:
    """Map what `getsignal` reported at start-up to what a child should get."""
    if handler in (signal.SIG_IGN, signal.SIG_DFL):
        return handler
    return signal.SIG_DFL  # Python's own SIGINT handler, or None for non-Python handlers


class SignalSetup:
    """Owns the parent's signal state: install once, drain in the loop."""

    def __init__(self) -> None:
        self.original: dict[int, Any] = {}
        self.original_mask: set[int] = set()
        self.wakeup_fd = -1
        self._write_fd = -1

    def install(self) -> int:
        """Install handlers and the wakeup pipe; return the fd to poll."""
        for signum in (*_HANDLED, *_IGNORED_BY_PWSUP):
            self.original[signum] = _as_disposition(signal.getsignal(signum))
        for signum in _RESET_BY_PYTHON:
            self.original[signum] = signal.SIG_DFL
        self.wakeup_fd, self._write_fd = os.pipe()
        os.set_blocking(self.wakeup_fd, False)
        os.set_blocking(self._write_fd, False)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in _HANDLED:
            signal.signal(signum, _noop)
        for signum in _IGNORED_BY_PWSUP:
            signal.signal(signum, signal.SIG_IGN)
        # A signal blocked by whoever started pwsup would never reach the handlers.
        self.original_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        return self.wakeup_fd

    def drain(self) -> list[int]:
        """Signal numbers received since the last drain, in arrival order."""
        received: list[int] = []
        while True:
            try:
                data = os.read(self.wakeup_fd, 512)
            except BlockingIOError:
                return received
            if not data:
                return received
            received.extend(data)

    def restore_in_child(self) -> None:
        """In a forked child (signals blocked): put back what pwsup was given.

        The caller restores the mask with `restore_mask_in_child()` last, right before exec.
        """
        signal.set_wakeup_fd(-1)
        for signum, disposition in self.original.items():
            signal.signal(signum, disposition)
        for fd in (self.wakeup_fd, self._write_fd):
            if fd >= 0:
                os.close(fd)

    def restore_mask_in_child(self) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.original_mask)


class StopWatch:
    """Context manager for the time before the loop exists (secrets being resolved): the
    signals pwsup forwards wake `fd` instead of killing pwsup outright, so a stop signal
    can end the resolver too and leave no output file half done; the others (HUP, USR1...)
    have no command to go to yet and are dropped. A signal ignored by whoever started pwsup
    stays ignored. Everything is put back on the way out, so the loop's `SignalSetup`
    records what pwsup was given."""

    def __enter__(self) -> StopWatch:
        self._saved: dict[int, Any] = {}
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in FORWARDED:
            handler = signal.getsignal(signum)
            if handler is not signal.SIG_IGN and handler is not None:  # None: not Python's
                self._saved[signum] = handler
                signal.signal(signum, _noop)
        self._mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, self._saved)
        return self

    def stop_signal(self) -> int | None:
        """The first stop signal received so far, if any (the others are dropped)."""
        while True:
            try:
                data = os.read(self.fd, 512)
            except BlockingIOError:
                return None
            for signum in data:
                if signum in STOPPING:
                    return signum

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self.fd)
        os.close(self._write_fd)


class BlockedSignals:
    """Context manager: block every signal, e.g. across fork, restoring the mask after.

    A forked child starts with everything blocked, so no signal can run a Python handler
    (the parent's) in it before it has reset its dispositions."""

    def __enter__(self) -> BlockedSignals:
        self._previous = signal.pthread_sigmask(signal.SIG_SETMASK, signal.valid_signals())
        return self

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._previous)
