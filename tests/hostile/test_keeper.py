"""run_isolated's caller killed outright: what fn started does not outlive it.

The class: a caller that dies without running any of its code (SIGKILL, the OOM killer's
choice) while fn runs and has started a child in the worker's process group and a daemon
that escaped it with setsid() and a double fork — one that ignores SIGTERM too. The worker
dies with the caller (PR_SET_PDEATHSIG); the keeper (pwsup.embedded.keeper) notices the
caller's death by EOF and ends the rest: SIGTERM, the call's grace period, SIGKILL. Also: a
child the caller forked and left running does not hide the caller's death, the keeper
holds none of the caller's descriptors, and a caller that exits normally leaves no keeper.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import CHILD_LIFETIME, python_cmd
from helpers.scripts import SPAWN_DAEMON

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.runner import Running

pytestmark = pytest.mark.hostile

GRACE = 1.0
"""The grace period the caller gives run_isolated."""

CALLER = f"""
import os, signal, subprocess, sys, time
from pwsup import run_isolated

DAEMON = {SPAWN_DAEMON!r}

def fn():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep({CHILD_LIFETIME})"])
    daemon = subprocess.run([sys.executable, "-c", DAEMON, "--ignore-term"],
                            capture_output=True, text=True, check=True).stdout.strip()
    forked = os.fork()
    if forked == 0:  # a plain fork in the worker's group, running Python, no exec
        time.sleep({CHILD_LIFETIME})
        os._exit(0)
    print("ready", os.getpid(), child.pid, daemon, forked, flush=True)
    time.sleep({CHILD_LIFETIME})

if sys.argv[1] == "fork-first":  # a child of the caller that outlives it, holding no exec
    first = os.fork()
    if first == 0:
        time.sleep({CHILD_LIFETIME})
        os._exit(0)
    print("first", first, flush=True)
if sys.argv[1] == "exit":
    from pwsup.embedded import keeper
    run_isolated(lambda: None)
    print("ready", keeper._keeper.pid, flush=True)
    sys.exit(0)
run_isolated(fn, grace={GRACE})
"""
"""The caller: run_isolated(fn); fn prints `ready <worker> <child> <daemon> <forked>` and
waits. With `fork-first` the caller first forks a child of its own that lives on."""


def _started(start: Callable[..., Running], how: str
             ) -> tuple[Running, list[procs.Proc], procs.Proc | None]:
    caller = start(python_cmd(CALLER, how))
    first = procs.Proc.of(int(caller.expect("first").split()[1])) if how == "fork-first" \
        else None
    pids = [int(p) for p in caller.expect("ready").split()[1:]]
    return caller, [procs.Proc.of(pid) for pid in pids], first


def _keeper_of(caller_pid: int, worker: int) -> procs.Proc:
    (keeper,) = [pid for pid in procs.children(caller_pid)
                 if pid != worker and procs.pgid_of(pid) == pid]
    return procs.Proc.of(keeper)


@pytest.mark.parametrize("how", ["plain", "fork-first"])
def test_a_caller_killed_outright_takes_fn_s_processes_along(
        start: Callable[..., Running], how: str) -> None:
    caller, (worker, child, daemon, forked), first = _started(start, how)
    keeper = _keeper_of(caller.pid, worker.pid)
    assert all(p.alive() for p in (worker, child, daemon, forked, keeper))
    caller.signal(signal.SIGKILL)
    caller.wait()
    # the daemon ignores SIGTERM: it takes the grace period, then SIGKILL
    procs.wait_for_exit([worker, child, daemon, forked], GRACE + SLACK)
    procs.wait_for_exit([keeper], SLACK)  # its work done, the keeper is gone too
    if first is not None:  # the caller's own child: not fn's, so the caller's to end
        assert first.alive()
        procs.kill_quietly(first.pid)


def test_the_keeper_holds_none_of_the_caller_s_descriptors(
        start: Callable[..., Running]) -> None:
    caller, (worker, *_rest), _ = _started(start, "plain")
    keeper = _keeper_of(caller.pid, worker.pid)
    assert sorted(int(fd) for fd in os.listdir(f"/proc/{keeper.pid}/fd")) == [0, 1, 2, 3]
    assert os.readlink(f"/proc/{keeper.pid}/fd/1") == os.devnull
    assert os.getsid(keeper.pid) == keeper.pid  # not in the caller's session: no Ctrl-C
    caller.signal(signal.SIGKILL)


def test_a_caller_that_exits_normally_reaps_its_keeper(start: Callable[..., Running]) -> None:
    caller = start(python_cmd(CALLER, "exit"))
    keeper = int(caller.expect("ready").split()[1])
    assert caller.wait() == 0
    assert procs.state(keeper) is None, "the keeper was left to whoever reaps orphans"


def test_a_keeper_killed_by_hand_is_replaced_at_the_next_call() -> None:
    from pwsup import run_isolated
    from pwsup.embedded import keeper

    assert run_isolated(os.getpid) != os.getpid()
    first = keeper._keeper
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    procs.wait_for_exit([procs.Proc.of(first.pid)], SLACK)
    assert run_isolated(os.getpid) != os.getpid()  # the withdraw meets EPIPE: forgotten
    assert run_isolated(os.getpid) != os.getpid()
    second = keeper._keeper
    assert second is not None
    assert second.pid != first.pid
    keeper.close()


def test_a_child_another_thread_forks_meanwhile_does_not_keep_the_pipe() -> None:
    """While one thread forks a worker (the pipe handed to that child), a child another
    thread forks closes its copy all the same: it would hide the caller's death."""
    from pwsup.embedded import keeper

    report_r, report_w = os.pipe()

    def fork_a_child(write_fd: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: is the keeper's write end still open here?
            try:
                os.fstat(write_fd)
                os.write(report_w, b"kept")
            except OSError:
                os.write(report_w, b"closed")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    try:
        with keeper.handing_off() as write_fd:  # as a worker's fork is about to happen
            assert write_fd is not None
            other = threading.Thread(target=fork_a_child, args=(write_fd,))
            other.start()
            other.join()
        assert os.read(report_r, 16) == b"closed"
    finally:
        os.close(report_r)
        os.close(report_w)
        keeper.close()


POOL_CALLER = f"""
import os, subprocess, sys, time
from pwsup import IsolatedPool

def task():
    daemon = subprocess.run([sys.executable, "-c", {SPAWN_DAEMON!r}, "--ignore-term"],
                            capture_output=True, text=True, check=True).stdout.strip()
    print("ready", os.getpid(), daemon, flush=True)
    time.sleep({CHILD_LIFETIME})

with IsolatedPool(1, grace={GRACE}) as pool:
    pool.submit(task).result()
"""


def test_an_isolated_pool_s_caller_killed_outright_takes_its_tasks_processes_along(
        start: Callable[..., Running]) -> None:
    caller = start(python_cmd(POOL_CALLER))
    worker, daemon = (procs.Proc.of(int(p)) for p in caller.expect("ready").split()[1:])
    caller.signal(signal.SIGKILL)
    caller.wait()
    procs.wait_for_exit([worker, daemon], GRACE + SLACK)
