"""Waiting for descriptors with poll(), never select().

select() cannot watch a descriptor numbered FD_SETSIZE (1024) or above: Python raises
`ValueError: filedescriptor out of range in select()`. pwsup's own descriptors (pidfds,
pipes) get such numbers as soon as it inherits more than about 1020 open descriptors from
its parent, so every wait on a descriptor goes through poll(), which has no such limit.

`wait` answers what `select.select(read, write, [], timeout)` answers, in the same cases:

- readable means POLLIN, POLLHUP or POLLERR; writable means POLLOUT or POLLERR (what the
  kernel's select() counts). A hang-up on a descriptor watched only for writing is not an
  answer: select() keeps waiting, so `wait` stops watching that descriptor and waits on;
- the timeout is in seconds, None waits for ever, a negative one is a ValueError; poll()'s
  milliseconds are rounded up, so a wait never ends early;
- a closed descriptor is an OSError (EBADF), a negative one a ValueError;
- a signal does not end the wait early: Python retries poll() on EINTR with the time left
  (PEP 475), as it does select().
"""

from __future__ import annotations

import errno
import os
import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_READABLE = select.POLLIN | select.POLLHUP | select.POLLERR
_WRITABLE = select.POLLOUT | select.POLLERR
_MAX_MS = 2**31 - 1
"""The longest timeout poll() takes (a C int of milliseconds, about 24.8 days); a longer
wait is made of several."""


def poll_timeout(seconds: float | None) -> int | None:
    """`seconds` as poll()'s timeout: whole milliseconds, rounded up; None stays None."""
    if seconds is None:
        return None
    if seconds < 0:
        raise ValueError("timeout must be non-negative")
    exact = seconds * 1000
    ms = int(exact)
    return ms + 1 if ms < exact else ms


def wait(read: Iterable[int] = (), write: Iterable[int] = (),
         timeout: float | None = None) -> tuple[list[int], list[int]]:
    """Wait until a descriptor of `read` is readable or one of `write` is writable, or
    `timeout` seconds have passed (0: just look; None: no limit). Returns (readable,
    writable), both empty after the timeout."""
    wanted: dict[int, int] = {}
    for fd in read:
        wanted[fd] = wanted.get(fd, 0) | select.POLLIN
    for fd in write:
        wanted[fd] = wanted.get(fd, 0) | select.POLLOUT
    poller = select.poll()
    for fd, events in wanted.items():
        poller.register(fd, events)
    ms = poll_timeout(timeout)
    deadline = None if timeout is None or ms == 0 else time.monotonic() + timeout
    while True:
        readable: list[int] = []
        writable: list[int] = []
        for fd, revents in poller.poll(ms if ms is None or ms <= _MAX_MS else _MAX_MS):
            if revents & select.POLLNVAL:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            answered = False
            if wanted[fd] & select.POLLIN and revents & _READABLE:
                readable.append(fd)
                answered = True
            if wanted[fd] & select.POLLOUT and revents & _WRITABLE:
                writable.append(fd)
                answered = True
            if not answered:  # a hang-up of a descriptor watched for writing only
                poller.unregister(fd)
        if readable or writable or ms == 0:
            return readable, writable
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return readable, writable
            ms = poll_timeout(left)
