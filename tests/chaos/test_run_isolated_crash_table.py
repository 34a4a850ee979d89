"""run_isolated's crash table: every fault, injected in every phase of a call, gives the
expected outcome, and leaves no process and no file descriptor behind.

Phases (where the fault strikes):
- arguments: in the `__reduce__` of an argument. With fork, arguments are copied, never
  pickled, so the fault never runs and the call succeeds: that row pins the decision down.
- running: in fn's body.
- returning: in the `__reduce__` of fn's return value (the worker pickling the result).
- raising: in the `__reduce__` of the exception fn raises (the worker pickling it).
- unpickling: in the caller, loading the result. Only exceptions (SystemExit included:
  the payload's, so that call's error, never the caller's exit) can be injected there: a
  crash would take the test process down with it.
"""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import psutil
import pytest

from helpers import procs
from pwsup.embedded.isolated import run_isolated
from pwsup.errors import (
    ExceptionNotPicklable,
    RemoteTraceback,
    ResultNotPicklable,
    ResultNotUnpicklable,
    WorkerCrashed,
    WorkerTimeout,
)

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.chaos

TIMEOUT = 0.3
GRACE = 0.3
HANG_GUARD = 30.0
"""Every call must end before this many seconds: far beyond TIMEOUT + GRACE, so a busy
machine cannot fail a cell, and far below the 60 s an injected hang would last."""


# -- faults ---------------------------------------------------------------------------------------


def inject(fault: str) -> Any:
    """Do `fault` here and now. Some return what the phase then tries to send."""
    if fault == "exception":
        raise ValueError("injected fault")
    if fault == "sys.exit":
        sys.exit(3)
    if fault == "os._exit":
        os._exit(7)
    if fault == "segfault":
        faulthandler._sigsegv()
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault in ("hang", "ignore-sigterm"):
        if fault == "ignore-sigterm":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
    if fault == "unpicklable-result":
        return threading.Lock()
    if fault == "unpicklable-exception":
        class LocalError(Exception):
            """Defined inside a function: pickle cannot find it by name."""

        raise LocalError("injected local error")
    raise AssertionError(f"unknown fault {fault!r}")


def rebuild(value: object) -> object:
    return value


class FaultAtPickle:
    """Injects its fault when pickled: pickling then carries on with what it returned."""

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def __reduce__(self) -> tuple[Callable[[object], object], tuple[object]]:
        return (rebuild, (inject(self.fault),))


class FaultyError(Exception):
    """An exception that injects its fault when pickled."""

    def __init__(self, fault: str) -> None:
        super().__init__(fault)
        self.fault = fault

    def __reduce__(self) -> tuple[Callable[[object], object], tuple[object]]:
        return (rebuild, (inject(self.fault),))


class FaultAtUnpickle:
    """Pickles fine; loading it in the caller raises (or calls sys.exit)."""

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def __reduce__(self) -> tuple[Callable[[str], NoReturn], tuple[str]]:
        return (refuse, (self.fault,))


def refuse(fault: str) -> NoReturn:
    if fault == "sys.exit":
        sys.exit(3)
    raise ValueError("injected fault at unpickling")


def raise_faulty(fault: str) -> NoReturn:
    raise FaultyError(fault)


def call_for(phase: str, fault: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """fn and its arguments for one cell of the table."""
    if phase == "arguments":
        return (lambda arg: "ran"), (FaultAtPickle(fault),)
    if phase == "running":
        return inject, (fault,)
    if phase == "returning":
        return FaultAtPickle, (fault,)
    if phase == "raising":
        return raise_faulty, (fault,)
    if phase == "unpickling":
        return FaultAtUnpickle, (fault,)
    raise AssertionError(phase)


# -- the table ------------------------------------------------------------------------------------

RETURNS = None
"""Expected outcome: run_isolated returns (the value given as the pattern)."""

EXIT_3 = (WorkerCrashed, r"^worker \(pid \d+\) exited with code 3 without returning a result")
EXIT_7 = (WorkerCrashed, r"^worker \(pid \d+\) exited with code 7 without returning a result")
SEGV = (WorkerCrashed, r"killed by SIGSEGV \(signal 11\): a crash in native code")
KILLED = (WorkerCrashed,
          r"killed by SIGKILL \(signal 9\): killed from outside or by the out-of-memory killer")
TIMED_OUT = (WorkerTimeout, r"did not finish within its 0\.3 s timeout; "
             r"its worker \(pid \d+\) was stopped with SIGTERM$")
TERM_IGNORED = (WorkerTimeout, r"stopped with SIGTERM, then SIGKILL: "
                r"it was still running after the 0\.3 s grace period$")
LOCK = r"cannot pickle '_thread\.lock' object"


@dataclass(frozen=True)
class Case:
    phase: str
    fault: str
    expected: type[BaseException] | None
    pattern: str


def case(phase: str, fault: str, expected: tuple[type[BaseException] | None, str]) -> Any:
    return pytest.param(Case(phase, fault, *expected), id=f"{phase}-{fault}")


CASES = [
    # phase ------- fault ------------------ expected outcome: (type, message regex)
    case("arguments", "exception", (RETURNS, "ran")),
    case("arguments", "sys.exit", (RETURNS, "ran")),
    case("arguments", "os._exit", (RETURNS, "ran")),
    case("arguments", "segfault", (RETURNS, "ran")),
    case("arguments", "sigkill", (RETURNS, "ran")),
    case("arguments", "hang", (RETURNS, "ran")),
    case("arguments", "ignore-sigterm", (RETURNS, "ran")),
    case("arguments", "unpicklable-result", (RETURNS, "ran")),
    case("arguments", "unpicklable-exception", (RETURNS, "ran")),

    case("running", "exception", (ValueError, r"^injected fault$")),
    case("running", "sys.exit", EXIT_3),
    case("running", "os._exit", EXIT_7),
    case("running", "segfault", SEGV),
    case("running", "sigkill", KILLED),
    case("running", "hang", TIMED_OUT),
    case("running", "ignore-sigterm", TERM_IGNORED),
    case("running", "unpicklable-result", (ResultNotPicklable,
                                           rf"^fn's return value \(_thread\.lock\) "
                                           rf"could not be pickled .*{LOCK}")),
    case("running", "unpicklable-exception", (ExceptionNotPicklable,
                                              r"^fn raised .*inject\.<locals>\.LocalError, "
                                              r"which could not be pickled")),

    case("returning", "exception", (ResultNotPicklable,
                                    r"^fn's return value \(.*FaultAtPickle\) could not be "
                                    r"pickled .*: ValueError: injected fault")),
    case("returning", "sys.exit", (ResultNotPicklable, r"FaultAtPickle.*: SystemExit: 3\.")),
    case("returning", "os._exit", EXIT_7),
    case("returning", "segfault", SEGV),
    case("returning", "sigkill", KILLED),
    case("returning", "hang", TIMED_OUT),
    case("returning", "ignore-sigterm", TERM_IGNORED),
    case("returning", "unpicklable-result", (ResultNotPicklable, rf"FaultAtPickle.*{LOCK}")),
    case("returning", "unpicklable-exception", (ResultNotPicklable,
                                                r"FaultAtPickle.*LocalError: injected local")),

    case("raising", "exception", (ExceptionNotPicklable,
                                  r"^fn raised .*FaultyError, which could not be pickled "
                                  r".*: ValueError: injected fault")),
    case("raising", "sys.exit", (ExceptionNotPicklable, r"FaultyError.*: SystemExit: 3\.")),
    case("raising", "os._exit", EXIT_7),
    case("raising", "segfault", SEGV),
    case("raising", "sigkill", KILLED),
    case("raising", "hang", TIMED_OUT),
    case("raising", "ignore-sigterm", TERM_IGNORED),
    case("raising", "unpicklable-result", (ExceptionNotPicklable, rf"FaultyError.*{LOCK}")),
    case("raising", "unpicklable-exception", (ExceptionNotPicklable,
                                              r"FaultyError.*LocalError: injected local")),

    case("unpickling", "exception", (ResultNotUnpicklable,
                                     r"ValueError: injected fault at unpickling")),
    case("unpickling", "sys.exit", (ResultNotUnpicklable, r"unpickle .*: SystemExit: 3$")),
]


# -- the test -------------------------------------------------------------------------------------


def snapshot() -> tuple[set[str], set[int]]:
    """Open fds and child processes (zombies included) of the test process."""
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    return set(os.listdir("/proc/self/fd")), children


@pytest.mark.parametrize("cell", CASES)
def test_crash_table(cell: Case) -> None:
    """The fault gives the expected outcome, and the call leaves nothing behind."""
    fn, args = call_for(cell.phase, cell.fault)
    procs.keeper_started()  # it lives as long as this process: not the call's leftover
    before = snapshot()
    start = time.monotonic()
    if cell.expected is RETURNS:
        assert run_isolated(fn, *args, timeout=TIMEOUT, grace=GRACE) == cell.pattern
    else:
        with pytest.raises(cell.expected) as caught:
            run_isolated(fn, *args, timeout=TIMEOUT, grace=GRACE)
        assert re.search(cell.pattern, str(caught.value)), str(caught.value)
        check_fields(caught.value)
    # The faults that hang sleep 60 s: ending well before that shows the timeout and the
    # grace period stopped them (the messages above say which signal it took).
    assert time.monotonic() - start < HANG_GUARD, "the deadlines did not stop the call"
    assert snapshot() == before, "a process or a file descriptor was left behind"


def check_fields(error: BaseException) -> None:
    """What each kind of outcome must carry besides its message."""
    if isinstance(error, WorkerCrashed):
        assert isinstance(error.pid, int)
        assert (error.exitcode is None) != (error.signal is None)
    elif isinstance(error, WorkerTimeout):
        assert (error.timeout, isinstance(error.pid, int)) == (TIMEOUT, True)
    elif isinstance(error, ExceptionNotPicklable):
        assert isinstance(error.__cause__, RemoteTraceback)
        assert "Traceback (most recent call last)" in str(error.__cause__)
    elif not isinstance(error, (ResultNotPicklable, ResultNotUnpicklable)):
        assert isinstance(error.__cause__, RemoteTraceback)  # fn's own exception
