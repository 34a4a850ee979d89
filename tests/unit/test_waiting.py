"""`waiting.wait`: what select.select answers, for descriptors of any number."""

from __future__ import annotations

import errno
import os
import resource
import time
from typing import TYPE_CHECKING

import pytest

from pwsup.util.waiting import poll_timeout, wait

if TYPE_CHECKING:
    from collections.abc import Iterator

HIGH = 1500
"""A descriptor number select() cannot watch (FD_SETSIZE is 1024)."""


@pytest.mark.parametrize(("seconds", "ms"), [
    (None, None), (0, 0), (0.0, 0), (1e-7, 1), (0.001, 1), (0.0015, 2), (0.05, 50),
    (1.0, 1000), (2.0001, 2001)])
def test_timeouts_are_rounded_up_to_milliseconds(seconds: float | None, ms: int | None) -> None:
    assert poll_timeout(seconds) == ms


def test_a_negative_timeout_is_refused_as_select_refuses_it() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        wait([], timeout=-0.1)


@pytest.fixture
def high_pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose read end is numbered HIGH (the write end as os.pipe gave it)."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= HIGH:
        pytest.skip(f"the soft limit on open files is not above {HIGH}")
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(HIGH)  # not open: this test may take the number
    read_end, write_end = os.pipe()
    os.dup2(read_end, HIGH)
    os.close(read_end)
    try:
        yield HIGH, write_end
    finally:
        os.close(HIGH)
        os.close(write_end)


def test_a_descriptor_above_fd_setsize(high_pipe: tuple[int, int]) -> None:
    read_end, write_end = high_pipe
    assert wait([read_end], [write_end], timeout=0) == ([], [write_end])
    os.write(write_end, b"x")
    assert wait([read_end], timeout=0) == ([read_end], [])
    assert wait([read_end]) == ([read_end], [])  # no timeout: at once all the same


def test_the_timeout_is_waited_out_in_full(high_pipe: tuple[int, int]) -> None:
    read_end, _ = high_pipe
    started = time.monotonic()
    assert wait([read_end], timeout=0.05) == ([], [])
    assert time.monotonic() - started >= 0.05


def test_a_hang_up_is_readable_and_a_closed_reader_makes_the_writer_writable() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        assert wait([read_end], timeout=0) == ([read_end], [])  # POLLHUP: EOF to read
    finally:
        os.close(read_end)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        assert wait(write=[write_end], timeout=0) == ([], [write_end])  # POLLERR
    finally:
        os.close(write_end)


def test_a_closed_descriptor_is_ebadf_as_with_select(high_pipe: tuple[int, int]) -> None:
    closed = HIGH + 1  # above the lowest free number: nothing else opens it meanwhile
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(closed)
    with pytest.raises(OSError, match="Bad file descriptor") as raised:
        wait([closed], timeout=0)
    assert raised.value.errno == errno.EBADF
