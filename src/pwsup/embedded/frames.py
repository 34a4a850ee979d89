"""What a run_isolated worker and its caller say to each other, and how it is framed.

One `os.pipe()` per worker carries everything, worker to caller, in order:

- any number of `StatusUpdate`s, one per `update_status()` call fn makes;
- then the outcome, a `Result`, exactly once and last: fn's value (OK), fn's exception
  with its formatted traceback (RAISED), or, when that could not be pickled, a `Problem`
  naming the type and the reason (ERROR).

Each frame is an 8-byte big-endian length, then a pickle of the message: a length prefix
rather than a separator because a pickle may contain any byte, and 8 bytes so that no
value is too large to frame. When the outcome does not pickle, the worker sends an ERROR
instead (plain strings, which always pickle), so the caller learns which type could not
be sent and why, rather than seeing a worker that died without a word.

What pickling or unpickling an outcome raises is the payload's doing, whatever its type:
a `__reduce__` may return `(sys.exit, (5,))`, or raise KeyboardInterrupt. So anything
raised there, BaseExceptions included, fails that one call with a TransferError: it
never ends the caller or a pool's thread, and never crashes the worker.

- In the worker, pickling the outcome (or the trial unpickling of an exception, below):
  an ERROR naming the type, so ResultNotPicklable or ExceptionNotPicklable in the
  caller. A worker being stopped still ends: should a SIGTERM handler fn installed raise
  there, run_isolated's worker exits once it has sent the ERROR, and a pool closes a
  worker's task pipe before it signals it.
- In the caller, unpickling a message: ResultNotUnpicklable for that call. Except a
  KeyboardInterrupt in the main thread: Python raises the caller's Ctrl-C there, and only
  there, in whatever code runs, a `__setstate__` included, and a Ctrl-C must not become
  a call's result. So it propagates from run_isolated (which stops the worker, as for any
  Ctrl-C); from a pool future's result() once the pool has settled that answer (as
  ResultNotUnpicklable: see `take_pool_messages`). In any other thread it can only be
  the payload's, and is a ResultNotUnpicklable like the rest.
"""

from __future__ import annotations

import os
import pickle
import struct
import threading
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from pwsup.errors import ResultNotUnpicklable

if TYPE_CHECKING:
    from collections.abc import Iterator

HEADER = struct.Struct("!Q")


class Status(Enum):
    OK = "ok"  # fn returned: the payload is its value
    RAISED = "raised"  # fn raised: the payload is (exception, formatted traceback)
    ERROR = "error"  # the outcome could not be sent: the payload is a Problem


@dataclass(frozen=True)
class Result:
    """The worker's outcome, sent exactly once, last."""

    status: Status
    payload: Any


@dataclass(frozen=True)
class Problem:
    """Why an outcome could not be pickled. Plain strings only, so it always pickles."""

    what: str  # "result" or "exception"
    type_name: str
    reason: str
    traceback: str  # fn's traceback when an exception could not be sent, else ""


@dataclass(frozen=True)
class StatusUpdate:
    """Fields from update_status(), delivered to on_status in the order sent."""

    fields: dict[str, Any]


# -- the worker's end -----------------------------------------------------------------------


def dumps(message: object) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def encode(result: Result) -> bytes:
    """The outcome as bytes; an ERROR naming the type when it does not pickle. An exception
    is also unpickled once here: one that cannot be rebuilt (an `__init__` with required
    arguments it does not pass on) is then reported here, with fn's traceback, rather than
    failing in the caller with neither."""
    try:
        payload = dumps(result)
        if result.status is Status.RAISED:
            pickle.loads(payload)
    except BaseException as error:  # the payload's: see the module docstring
        return dumps(Result(Status.ERROR, _problem(result, error)))
    return payload


def write_frame(fd: int, payload: bytes) -> None:
    """One whole frame; the caller of this keeps frames from interleaving."""
    _write_all(fd, HEADER.pack(len(payload)))
    _write_all(fd, payload)


def _problem(result: Result, error: BaseException) -> Problem:
    if result.status is Status.RAISED:
        exception, text = result.payload
        return Problem("exception", type_name(exception), describe(error), text)
    return Problem("result", type_name(result.payload), describe(error), "")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- the caller's end -----------------------------------------------------------------------


def take_messages(inbox: bytearray) -> Iterator[Result | StatusUpdate]:
    """The complete messages in `inbox`, in order, each removed as it is yielded. Anything
    else that unpickles is skipped; what does not unpickle is a ResultNotUnpicklable."""
    while len(inbox) >= HEADER.size:
        (length,) = HEADER.unpack_from(inbox)
        end = HEADER.size + length
        if len(inbox) < end:
            return
        with memoryview(inbox) as view, view[HEADER.size:end] as payload:
            message = _loads(payload)
        del inbox[:end]
        if isinstance(message, (Result, StatusUpdate)):
            yield message


def _loads(payload: memoryview) -> object:
    try:
        return pickle.loads(payload)
    except BaseException as error:
        if is_callers_interrupt(error):
            raise
        raise ResultNotUnpicklable.of("a message from the worker", describe(error)) from error


def is_callers_interrupt(error: BaseException) -> bool:
    """Whether `error`, raised while a message was unpickled, may be the caller's Ctrl-C:
    a KeyboardInterrupt in the main thread (see the module docstring)."""
    return (isinstance(error, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread())


# -- naming what went wrong -----------------------------------------------------------------


def type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # a __str__ that fails: the type is still worth saying
        return type(error).__name__


# -- IsolatedPool's messages ------------------------------------------------------------------
#
# A pool worker exists before its tasks, so it has two pipes, framed as above: tasks go
# caller -> worker, each a pickled tuple `(fn, args, kwargs)`; each answer comes back as
# one frame, a tuple `(status, payload, usage, rss_bytes)`: a Result's status (its value)
# and payload, what the task cost (`Usage`'s fields, measured in the worker) and the
# worker's resident set after it (None unless the pool has a memory limit). Tuples rather
# than dataclasses: a dataclass costs about 2 µs more to pickle and again to unpickle, on
# each side of every call, a tenth of a trivial call's round trip.


def encode_task(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """A task's frame; raises what pickle raises when fn or an argument does not pickle."""
    return frame(dumps((fn, args, kwargs)))


def encode_reply(result: Result, usage: tuple[float, float, int, float],
                 rss_bytes: int | None) -> bytes:
    """A task's answer as one frame; as `encode`, an ERROR naming the type when the
    outcome does not pickle (or, for an exception, does not unpickle)."""
    try:
        payload = dumps((result.status.value, result.payload, usage, rss_bytes))
        if result.status is Status.RAISED:
            pickle.loads(payload)
    except BaseException as error:  # the payload's: see the module docstring
        payload = dumps((Status.ERROR.value, _problem(result, error), usage, rss_bytes))
    return frame(payload)


def frame(payload: bytes) -> bytes:
    """One whole frame as bytes, so that several can go out in one write()."""
    return HEADER.pack(len(payload)) + payload


@dataclass(frozen=True)
class Undecodable:
    """In place of a message whose frame did not unpickle: the reader decides what that
    means (the caller: fn's result; the worker: the task)."""

    error: BaseException


def take_pool_messages(inbox: bytearray, *, replies: bool = False) -> Iterator[object]:
    """Like `take_messages`, for either side of a pool worker's pipes: every complete
    message, whatever its type (the reader checks it), each removed as it is yielded; an
    `Undecodable` for a frame that does not unpickle.

    In the worker (tasks), only an Exception makes a task that does not unpickle:
    sys.exit() in a task's pickling hook ends the worker, as it would in fn. In the caller
    (`replies`), whatever the payload raises makes that answer's Undecodable; a
    KeyboardInterrupt in the main thread too, then kept for `raise_deferred_interrupt`
    (PoolFuture.result calls it): raised here, it would leave the pool's state
    half-changed, an answer read but not settled."""
    global _deferred_interrupt
    while len(inbox) >= HEADER.size:
        (length,) = HEADER.unpack_from(inbox)
        end = HEADER.size + length
        if len(inbox) < end:
            return
        with memoryview(inbox) as view, view[HEADER.size:end] as payload:
            try:
                message: object = pickle.loads(payload)
            except Exception as error:
                message = Undecodable(error)
            except BaseException as error:
                if not replies:
                    raise
                message = Undecodable(error)
                if isinstance(error, KeyboardInterrupt) and is_callers_interrupt(error):
                    _deferred_interrupt = error
        del inbox[:end]
        yield message


def take_pool_replies(inbox: bytearray) -> Iterator[object]:
    """`take_pool_messages` for the caller's end of a pool worker's reply pipe."""
    return take_pool_messages(inbox, replies=True)


_deferred_interrupt: KeyboardInterrupt | None = None
"""A KeyboardInterrupt the main thread met while unpickling a pool's answer (its future
got ResultNotUnpicklable), to raise once the pool's state is whole again."""


def raise_deferred_interrupt() -> None:
    """Raise the KeyboardInterrupt `take_pool_replies` kept, if any (main thread only)."""
    global _deferred_interrupt
    if threading.current_thread() is not threading.main_thread():
        return
    error, _deferred_interrupt = _deferred_interrupt, None
    if error is not None:
        raise error
