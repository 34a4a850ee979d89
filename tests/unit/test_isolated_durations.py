"""run_isolated's and IsolatedPool's durations: the command line's bounds, and long ones work.

A timeout or grace period is a number of seconds from 0 (a timeout: above 0) to
MAX_SECONDS, 10 years, as on the command line; `timeout=None` is no limit. NaN, infinity
and anything longer are rejected with a ValueError naming the argument, before anything
is forked. Every valid one works, even one longer than poll()'s limit of about 24.9 days
(the waits are cut into pieces): those used to fail with an OverflowError, killing fn, or
the pool's thread.

Every test checks that no descriptor, child process or thread is left behind.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT
from helpers.embedded import nothing_left_behind, sleeps_in_poll
from pwsup.config.numbers import MAX_SECONDS as CLI_MAX_SECONDS
from pwsup.embedded import handle
from pwsup.embedded.handle import MAX_SECONDS
from pwsup.embedded.isolated import run_isolated, update_status
from pwsup.embedded.pool import IsolatedPool
from pwsup.errors import WorkerTimeout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    with nothing_left_behind():
        yield



@pytest.fixture
def no_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_isolated must reject the value before it forks."""
    def refuse(*args: object) -> NoReturn:
        raise AssertionError("forked a worker for a bad setting")

    monkeypatch.setattr(handle, "_fork", refuse)


DAYS_25 = 25 * 86400.0
"""Beyond poll()'s 2**31 ms (about 24.9 days)."""
VALID = [pytest.param(DAYS_25, id="25-days"), pytest.param(MAX_SECONDS, id="10-years"),
         pytest.param(int(MAX_SECONDS), id="10-years-int")]
INVALID = [pytest.param(float("inf"), id="inf"), pytest.param(float("nan"), id="nan"),
           pytest.param(1e10, id="1e10"), pytest.param(MAX_SECONDS * 1.000001, id="over"),
           pytest.param(10**400, id="huge-int"), pytest.param(-1.0, id="negative"),
           pytest.param(float("-inf"), id="-inf")]


def add(a: int, b: int) -> int:
    return a + b


def stall_sigterm(report_w: int, release_r: int) -> None:
    """fn's SIGTERM handler: say so on `report_w`, wait for a byte on `release_r`, exit.
    So the caller is certainly waiting, within its grace period, for the worker to exit."""
    def on_term(signum: int, frame: object) -> None:
        os.write(report_w, b"t")
        os.read(release_r, 1)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)


def report_then_pause(report_w: int, release_r: int) -> None:
    stall_sigterm(report_w, release_r)
    update_status(step=1)
    while True:
        signal.pause()


def pause(report_w: int, release_r: int) -> None:
    stall_sigterm(report_w, release_r)
    while True:
        signal.pause()


def sleeping_in_poll(thread: Callable[[], int | None]) -> bool:
    """Whether the thread (its native id, once it exists) sleeps in poll() or select()."""
    native_id = thread()
    return native_id is not None and sleeps_in_poll(native_id)


@contextmanager
def released_after_sigterm(waiter: Callable[[], int | None]) -> Iterator[tuple[int, int]]:
    """Pipes for `stall_sigterm`, and a thread that lets the worker exit once it reports
    SIGTERM and `waiter` (the thread that stops it) sleeps waiting for it to exit: the
    long grace period is then certainly waited on. After EVENT_TIMEOUT it lets the worker
    exit anyway: never a hang."""
    report_r, report_w = os.pipe()
    release_r, release_w = os.pipe()

    def release() -> None:
        try:
            select.select([report_r], [], [], EVENT_TIMEOUT)
            procs.wait_until(lambda: sleeping_in_poll(waiter), EVENT_TIMEOUT,
                             "the caller waiting for the worker to exit")
        finally:
            os.write(release_w, b"x")

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        yield report_w, release_r
    finally:
        releaser.join(EVENT_TIMEOUT)
        for fd in (report_r, report_w, release_r, release_w):
            os.close(fd)


class Stop(Exception):
    pass


def stop(fields: dict[str, Any]) -> NoReturn:
    raise Stop(fields)


def test_the_bound_is_the_command_lines() -> None:
    assert MAX_SECONDS == CLI_MAX_SECONDS


# -- run_isolated -------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_fork")
@pytest.mark.parametrize("name", ["timeout", "grace", "retry_delay"])
@pytest.mark.parametrize("value", INVALID)
def test_run_isolated_rejects_durations_beyond_the_bounds(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be .* up to 315360000 \(10 years\)"):
        run_isolated(add, 1, 2, **{name: value})


@pytest.mark.parametrize("value", VALID)
def test_run_isolated_long_timeout_and_grace_work(value: float) -> None:
    """Waiting for the outcome with more than poll() takes left: no OverflowError."""
    assert run_isolated(add, 1, 2, timeout=value, grace=value) == 3


@pytest.mark.parametrize("value", VALID)
def test_run_isolated_long_grace_while_stopping_the_worker(value: float) -> None:
    """on_status raises: the worker is stopped, and the caller waits, up to the long grace
    period, for it to exit after SIGTERM."""
    main = threading.main_thread()
    with released_after_sigterm(lambda: main.native_id) as pipes, pytest.raises(Stop):
        run_isolated(report_then_pause, *pipes, on_status=stop, grace=value)


# -- IsolatedPool -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["timeout", "grace"])
@pytest.mark.parametrize("value", INVALID)
def test_pool_rejects_durations_beyond_the_bounds(name: str, value: float) -> None:
    """In the constructor, before any thread or worker starts (the fixture checks)."""
    with pytest.raises(ValueError, match=rf"^{name} must be .* up to 315360000 \(10 years\)"):
        IsolatedPool(1, **{name: value})


@pytest.mark.parametrize("value", INVALID)
def test_submit_with_rejects_timeouts_beyond_the_bounds(value: float) -> None:
    with IsolatedPool(1) as pool:
        with pytest.raises(ValueError, match=r"^timeout must be .* \(10 years\), or None"):
            pool.submit_with(add, (1, 2), timeout=value)
        assert pool.submit(add, 1, 2).result(EVENT_TIMEOUT) == 3  # nothing else changed


@pytest.mark.parametrize("value", VALID)
def test_pool_long_timeout_and_grace_work(value: float) -> None:
    """The pool's thread waits for a deadline beyond poll()'s limit, and a result() with
    such a timeout too: no OverflowError, and the pool works on."""
    with IsolatedPool(1, timeout=value, grace=value) as pool:
        assert pool.submit(add, 1, 2).result(EVENT_TIMEOUT) == 3
        assert pool.submit(add, 2, 3).result(timeout=value) == 5
        assert pool.submit_with(add, (3, 4), timeout=value).result(EVENT_TIMEOUT) == 7
        assert pool.submit(add, 4, 5).exception(timeout=value) is None


@pytest.mark.parametrize("value", VALID)
def test_pool_long_grace_while_stopping_a_timed_out_worker(value: float) -> None:
    """The task times out; its worker ends after SIGTERM, waited for with the long grace."""
    def ender() -> int | None:  # the thread that ends the worker (`pool_manager._end`)
        return next((t.native_id for t in threading.enumerate()
                     if t.name.endswith(" ending")), None)

    with released_after_sigterm(ender) as pipes, IsolatedPool(1, timeout=0.2, grace=value) as pool:
        with pytest.raises(WorkerTimeout):
            pool.submit(pause, *pipes).result(EVENT_TIMEOUT)
        assert pool.submit(add, 1, 2).result(EVENT_TIMEOUT) == 3
