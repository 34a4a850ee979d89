"""run_isolated and IsolatedPool against outcomes whose pickling hooks raise BaseExceptions.

A `__reduce__` may return `(sys.exit, (5,))`, or raise KeyboardInterrupt: whatever it
raises is the payload's doing, and must fail that one call with a TransferError, never
end the caller (SystemExit re-raised there), crash the worker, or kill a pool's thread
(leaving futures RUNNING forever). The one exception: a KeyboardInterrupt in the caller's
main thread may be the caller's own Ctrl-C, and reaches the caller (see `frames`).

Every test checks that no descriptor, child process or thread is left behind.
"""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import threading
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT
from helpers.embedded import nothing_left_behind, sleeps_in_poll
from pwsup.embedded import frames
from pwsup.embedded.isolated import run_isolated
from pwsup.embedded.pool import IsolatedPool
from pwsup.errors import (
    ExceptionNotPicklable,
    ResultNotPicklable,
    ResultNotUnpicklable,
    WorkerCrashed,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    with nothing_left_behind():
        yield



class Abort(BaseException):
    """A BaseException of the user's own."""


ERRORS = [SystemExit(5), GeneratorExit(), Abort("abort")]
"""What a hook raises, other than KeyboardInterrupt (tested on its own)."""


def _raise_in(error: BaseException, pid: int) -> Exception:
    """The reconstructor: raises `error` in process `pid` (the caller; 0: in every
    process); elsewhere (the worker's trial unpickling of an exception) rebuilds a
    harmless exception."""
    if pid in (0, os.getpid()):
        raise error
    return RuntimeError("unpickled outside the caller")


class LoadRaises:
    """A value whose unpickling, in the caller only, raises `error`."""

    def __init__(self, error: BaseException, caller: int) -> None:
        self.error, self.caller = error, caller

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (_raise_in, (self.error, self.caller))


class LoadRaisesError(Exception):
    """An exception whose unpickling, in the caller only, raises `error`."""

    def __init__(self, error: BaseException, caller: int) -> None:
        super().__init__("load raises")
        self.error, self.caller = error, caller

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (_raise_in, (self.error, self.caller))


def outcome(what: str, error: BaseException, caller: int) -> LoadRaises:
    """fn: returns (what="value") or raises (what="exception") what loads as `error`."""
    if what == "exception":
        raise LoadRaisesError(error, caller)
    return LoadRaises(error, caller)


class DumpRaises:
    """A value whose pickling (in the worker) raises `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __reduce__(self) -> NoReturn:
        raise self.error


class DumpRaisesError(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__("dump raises")
        self.error = error

    def __reduce__(self) -> NoReturn:
        raise self.error


def unpicklable(what: str, error: BaseException) -> DumpRaises:
    if what == "exception":
        raise DumpRaisesError(error)
    return DumpRaises(error)


def add(a: int, b: int = 0) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def wait_for_byte_then(fd: int, error: BaseException, caller: int) -> LoadRaises:
    os.read(fd, 1)
    return LoadRaises(error, caller)


def _named(error: BaseException) -> str:
    return type(error).__name__


# -- the caller unpickles: ResultNotUnpicklable for that call ----------------------------------


@pytest.mark.parametrize("what", ["value", "exception"])
@pytest.mark.parametrize("error", ERRORS, ids=_named)
def test_run_isolated_unpickling_that_raises_is_result_not_unpicklable(
        what: str, error: BaseException) -> None:
    """Not SystemExit in the caller: ending the caller is what isolation prevents."""
    with pytest.raises(ResultNotUnpicklable, match=type(error).__name__) as caught:
        run_isolated(outcome, what, error, os.getpid())
    assert type(caught.value.__cause__) is type(error)


def test_run_isolated_keyboard_interrupt_while_unpickling_in_the_main_thread() -> None:
    """It may be the caller's Ctrl-C: it propagates (the worker stopped and reaped, as for
    any Ctrl-C; the fixture checks)."""
    assert threading.current_thread() is threading.main_thread()
    with pytest.raises(KeyboardInterrupt, match=r"^ctrl-c$"):
        run_isolated(outcome, "value", KeyboardInterrupt("ctrl-c"), os.getpid())


def test_run_isolated_keyboard_interrupt_while_unpickling_in_another_thread() -> None:
    """Python raises a Ctrl-C in the main thread only: elsewhere it is the payload's."""
    caught: list[BaseException] = []

    def call() -> None:
        try:
            run_isolated(outcome, "value", KeyboardInterrupt("payload"), os.getpid())
        except BaseException as e:
            caught.append(e)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(EVENT_TIMEOUT)
    assert [type(e) for e in caught] == [ResultNotUnpicklable]
    assert isinstance(caught[0].__cause__, KeyboardInterrupt)


@pytest.mark.parametrize("what", ["value", "exception"])
@pytest.mark.parametrize(("error", "how"), [
    *((error, how) for error in ERRORS for how in ("result", "wait")),
    (KeyboardInterrupt("payload"), "wait"),  # the main thread's: a test of its own
], ids=lambda value: value if isinstance(value, str) else _named(value))
def test_pool_unpickling_that_raises_fails_only_its_future(
        what: str, error: BaseException, how: str) -> None:
    """The answer is unpickled by the pool's thread (`wait`), or by the thread waiting in
    result() (`result`): either way only that future fails, and the pool serves on."""
    with IsolatedPool(2) as pool:
        futures = [pool.submit(add, 0), pool.submit(add, 1),
                   pool.submit(outcome, what, error, os.getpid())]
        if how == "wait":
            done, _ = concurrent.futures.wait(futures, EVENT_TIMEOUT)
            assert len(done) == 3
        with pytest.raises(ResultNotUnpicklable, match=type(error).__name__) as caught:
            futures[2].result(EVENT_TIMEOUT)
        assert type(caught.value.__cause__) is type(error)
        assert [f.result(EVENT_TIMEOUT) for f in futures[:2]] == [0, 1]
        assert pool.submit(add, 2, 3).result(EVENT_TIMEOUT) == 5


def test_pool_keyboard_interrupt_while_the_main_thread_unpickles() -> None:
    """The main thread waits in result() on the worker's reply pipe and unpickles the
    answer itself: a KeyboardInterrupt there may be a Ctrl-C, so result() raises it, once
    the pool has settled that answer (ResultNotUnpicklable) and watches the worker again."""
    main = threading.main_thread().native_id
    assert main is not None
    assert threading.current_thread() is threading.main_thread()
    r, w = os.pipe()
    try:
        with IsolatedPool(1) as pool:
            pool.submit(pid).result(EVENT_TIMEOUT)  # a warm worker: the task goes straight to it
            future = pool.submit(wait_for_byte_then, r, KeyboardInterrupt("ctrl-c"),
                                 os.getpid())

            def release() -> None:  # once the main thread sleeps on the reply pipe
                try:
                    procs.wait_until(lambda: sleeps_in_poll(main), EVENT_TIMEOUT,
                                     "the main thread waiting in result()")
                finally:
                    os.write(w, b"x")

            releaser = threading.Thread(target=release)
            releaser.start()
            try:
                with pytest.raises(KeyboardInterrupt, match=r"^ctrl-c$"):
                    future.result(EVENT_TIMEOUT)
            finally:
                releaser.join(EVENT_TIMEOUT)
            error = future.exception(0)
            assert isinstance(error, ResultNotUnpicklable)
            assert isinstance(error.__cause__, KeyboardInterrupt)
            assert pool.submit(add, 2, 3).result(EVENT_TIMEOUT) == 5
    finally:
        os.close(r)
        os.close(w)


def test_pool_replies_keep_a_main_thread_keyboard_interrupt_for_later() -> None:
    """`frames.take_pool_replies`: the frame is consumed as an Undecodable either way;
    only in the main thread is the KeyboardInterrupt kept, and raised once asked."""
    def inbox() -> bytearray:
        return bytearray(frames.frame(pickle.dumps(LoadRaises(KeyboardInterrupt("k"),
                                                              os.getpid()))))

    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.extend(
        [*frames.take_pool_replies(box := inbox()), bytes(box)]))
    thread.start()
    thread.join(EVENT_TIMEOUT)
    frames.raise_deferred_interrupt()  # nothing kept from the other thread
    assert [type(m) for m in elsewhere] == [frames.Undecodable, bytes]
    assert elsewhere[1] == b""

    box = inbox()
    messages = list(frames.take_pool_replies(box))
    assert [type(m) for m in messages] == [frames.Undecodable]
    assert box == bytearray()
    with pytest.raises(KeyboardInterrupt, match=r"^k$"):
        frames.raise_deferred_interrupt()
    frames.raise_deferred_interrupt()  # raised once


def test_pool_task_whose_unpickling_calls_sys_exit_still_ends_the_worker() -> None:
    """In the worker a task's pickling hook is like fn: sys.exit() ends the worker."""
    with IsolatedPool(1) as pool:
        first = pool.submit(pid).result(EVENT_TIMEOUT)
        with pytest.raises(WorkerCrashed, match="exited with code 3"):
            pool.submit(add, LoadRaises(SystemExit(3), 0)).result(EVENT_TIMEOUT)
        assert pool.submit(pid).result(EVENT_TIMEOUT) != first


# -- the worker pickles: ResultNotPicklable / ExceptionNotPicklable ----------------------------


@pytest.mark.parametrize("error", [KeyboardInterrupt("k"), *ERRORS], ids=_named)
def test_run_isolated_pickling_that_raises_is_not_picklable(error: BaseException) -> None:
    """Not WorkerCrashed (exit 70, a traceback on the worker's stderr; or exit 5 for
    sys.exit): the worker names the type and the reason."""
    with pytest.raises(ResultNotPicklable, match="DumpRaises") as caught:
        run_isolated(unpicklable, "value", error)
    assert caught.value.reason.startswith(type(error).__name__)
    with pytest.raises(ExceptionNotPicklable, match="DumpRaisesError") as raised:
        run_isolated(unpicklable, "exception", error)
    assert raised.value.reason.startswith(type(error).__name__)
    assert "DumpRaisesError: dump raises" in str(raised.value.__cause__)


def test_run_isolated_exception_whose_unpickling_raises_in_the_worker_too() -> None:
    """The worker's trial unpickling of an exception catches it, with fn's traceback."""
    with pytest.raises(ExceptionNotPicklable, match="LoadRaisesError") as caught:
        run_isolated(outcome, "exception", SystemExit(5), 0)  # pid 0: raises everywhere
    assert caught.value.reason == "SystemExit: 5"
    assert "in outcome" in str(caught.value.__cause__)


@pytest.mark.parametrize("error", [KeyboardInterrupt("k"), *ERRORS], ids=_named)
def test_pool_pickling_that_raises_is_not_picklable(error: BaseException) -> None:
    """The same in a pool; the worker serves on."""
    with IsolatedPool(1) as pool:
        worker = pool.submit(pid).result(EVENT_TIMEOUT)
        with pytest.raises(ResultNotPicklable, match="DumpRaises") as caught:
            pool.submit(unpicklable, "value", error).result(EVENT_TIMEOUT)
        assert caught.value.reason.startswith(type(error).__name__)
        with pytest.raises(ExceptionNotPicklable, match="DumpRaisesError"):
            pool.submit(unpicklable, "exception", error).result(EVENT_TIMEOUT)
        assert pool.submit(pid).result(EVENT_TIMEOUT) == worker

