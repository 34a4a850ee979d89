"""IsolatedPool's crash table: every fault of run_isolated's table, injected into one task
among healthy ones, gives that task run_isolated's outcome and touches no other task; the
pool keeps working; nothing is left behind (the process_cleanup fixture checks the test's
whole process tree after each test, and each test checks its fds).

Phases are run_isolated's (see test_run_isolated_crash_table), but for "arguments": a
pool pickles fn's arguments in the caller, at submit(), so a fault there strikes the
caller. Only faults that are exceptions are injected there (the others would end the
test process): the task fails with ArgumentsNotPicklable, at once, and only that task.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from typing import Any

import pytest
from test_run_isolated_crash_table import (
    CASES,
    HANG_GUARD,
    Case,
    FaultAtPickle,
    call_for,
    check_fields,
)

from helpers import procs
from pwsup.embedded.pool import IsolatedPool
from pwsup.errors import ArgumentsNotPicklable, WorkerCrashed

pytestmark = pytest.mark.chaos

TIMEOUT = 0.3
GRACE = 0.3
NEIGHBOURS = 3
"""Healthy tasks submitted before and after the faulty one."""


def double(x: int) -> int:
    return 2 * x


def pid() -> int:
    return os.getpid()


def ran(arg: object) -> str:
    return "ran"


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


POOL_CASES = [param for param in CASES if param.values[0].phase != "arguments"]


@pytest.mark.parametrize("cell", POOL_CASES)
def test_pool_crash_table(cell: Case) -> None:
    fn, args = call_for(cell.phase, cell.fault)
    procs.keeper_started()  # it lives as long as this process: not the pool's leftover
    fds = open_fds()
    start = time.monotonic()
    with IsolatedPool(2, timeout=TIMEOUT, grace=GRACE) as pool:
        before = [pool.submit(double, i) for i in range(NEIGHBOURS)]
        faulty = pool.submit(fn, *args)
        after = [pool.submit(double, i) for i in range(NEIGHBOURS, 2 * NEIGHBOURS)]
        if cell.expected is None:
            assert faulty.result(HANG_GUARD) == cell.pattern
        else:
            with pytest.raises(cell.expected) as caught:
                faulty.result(HANG_GUARD)
            assert re.search(cell.pattern, str(caught.value)), str(caught.value)
            check_fields(caught.value)
        assert [f.result(HANG_GUARD) for f in before + after] == [
            2 * i for i in range(2 * NEIGHBOURS)]
        assert pool.submit(double, 21).result(HANG_GUARD) == 42  # the pool works on
    assert time.monotonic() - start < HANG_GUARD, "the deadlines did not stop the task"
    assert open_fds() == fds


@pytest.mark.parametrize("fault", ["exception", "unpicklable-result"])
def test_fault_while_pickling_arguments_fails_only_that_task(fault: str) -> None:
    with IsolatedPool(1) as pool:
        good = pool.submit(double, 1)
        bad = pool.submit(ran, FaultAtPickle(fault))
        with pytest.raises(ArgumentsNotPicklable, match=r"^argument 0 \(.*FaultAtPickle\)"):
            bad.result(0)
        assert good.result(HANG_GUARD) == 2


def crash_or_not(kind: str, value: int) -> int:
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "exit":
        os._exit(5)
    if kind == "raise":
        raise ValueError(value)
    return value


def test_many_tasks_with_random_crashes_each_get_their_own_outcome(
        chaos_rng: random.Random) -> None:
    """300 tasks on 3 workers, a fifth of them crashing one way or another: every future
    has the outcome of its own task, never a neighbour's."""
    kinds = [chaos_rng.choice(["ok"] * 16 + ["sigkill", "exit", "raise", "raise"])
             for _ in range(300)]
    with IsolatedPool(3, max_tasks_per_worker=25) as pool:
        futures = [pool.submit(crash_or_not, kind, i) for i, kind in enumerate(kinds)]
        for i, (kind, future) in enumerate(zip(kinds, futures, strict=True)):
            error = future.exception(HANG_GUARD)
            check_outcome(kind, i, future.result() if error is None else error)


def check_outcome(kind: str, value: int, outcome: Any) -> None:
    if kind == "ok":
        assert outcome == value
    elif kind == "raise":
        assert isinstance(outcome, ValueError)
        assert outcome.args == (value,)
    else:
        assert isinstance(outcome, WorkerCrashed)
        assert (outcome.signal, outcome.exitcode) == (
            (signal.SIGKILL, None) if kind == "sigkill" else (None, 5))


def test_workers_killed_from_outside_while_idle_are_replaced() -> None:
    """Once the pool has reaped them (a task sent to a worker as it dies is that worker's
    crash, like any task it was running)."""
    with IsolatedPool(2) as pool:
        pids = {pool.submit(pid).result(HANG_GUARD) for _ in range(4)}
        for worker in pids:
            os.kill(worker, signal.SIGKILL)
        procs.wait_until(lambda: not pids & set(procs.children(os.getpid())), HANG_GUARD,
                         "the pool to reap its killed workers")
        assert [pool.submit(double, i).result(HANG_GUARD) for i in range(4)] == [0, 2, 4, 6]
        assert pool.submit(pid).result(HANG_GUARD) not in pids
