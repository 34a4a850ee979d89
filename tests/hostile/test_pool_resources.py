"""IsolatedPool out of processes, threads or descriptors: each future gets an outcome, the
pool stays usable once the resource is back, and shutdown() returns.

The class: the manager thread cannot start (RLIMIT_NPROC counts threads); a worker cannot
be forked (EAGAIN), or its pipes cannot be created (EMFILE); a worker being ended cannot
have a thread of its own. The process limit is real, as in test_fork_failure.py: the
caller runs under a real user id of its own, without CAP_SYS_RESOURCE or CAP_SYS_ADMIN,
and `prlimit` gives it a soft limit it may raise again up to the hard one (which is how a
script shows "the pool works once the resource is back"). The descriptor limit needs no
privilege: the script fills its own table. Each script prints its outcomes; a pool that
hangs makes the script outlive EXIT_TIMEOUT, and the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT
from helpers.runner import clean_env

pytestmark = pytest.mark.hostile

needs_a_process_limit = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("setpriv") and shutil.which("prlimit")),
    reason="needs root, setpriv and prlimit to run the caller under a user whose process "
           "limit is enforced")

UID = 500000 + os.getpid() % 100000
"""A user id of this test run alone: RLIMIT_NPROC counts every process of the user."""

FORK_ERROR = "ForkError: could not start an IsolatedPool worker: Resource temporarily unavailable"


def _run(code: str, *args: str, nproc: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `code` with this interpreter (under the process limit `soft:hard`, if given);
    nothing it started may be left."""
    argv = [sys.executable, "-c", code, *args]
    if nproc is not None:
        argv = ["setpriv", f"--ruid={UID}", "--bounding-set=-sys_resource,-sys_admin",
                "--inh-caps=-sys_resource,-sys_admin", "prlimit", f"--nproc={nproc}", *argv]
    before = set(procs.children(os.getpid()))
    done = subprocess.run(argv, env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=EXIT_TIMEOUT, check=False)
    left = [(pid, procs.cmdline(pid)) for pid in procs.children(os.getpid())
            if pid not in before]
    assert left == [], f"the caller left {left}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done
    return done


PREAMBLE = f"""
import concurrent.futures, os, resource, sys
from pwsup import IsolatedPool

def outcome(future):
    try:
        return repr(future.result({EVENT_TIMEOUT}))
    except Exception as e:
        return f"{{type(e).__name__}}: {{e}}"

def limit_processes(soft):
    resource.setrlimit(resource.RLIMIT_NPROC, (soft, resource.getrlimit(resource.RLIMIT_NPROC)[1]))
"""

NO_WORKER = PREAMBLE + f"""
pool = IsolatedPool(2)
futures = [pool.submit(abs, -i) for i in range(5)]
concurrent.futures.wait(futures, timeout={EVENT_TIMEOUT})
for future in futures:
    print(outcome(future))
limit_processes(8)
print(outcome(pool.submit(abs, -5)))
pool.shutdown()
print("shut down")
"""


@needs_a_process_limit
def test_no_worker_can_fork_every_queued_task_fails_and_the_next_submit_tries_again() -> None:
    """The caller and the manager thread are all its limit allows: no worker can start,
    none runs to take the queue, so every queued task fails with the ForkError (not only
    the first, the others waiting forever); shutdown() returns; once the limit is raised,
    the next submit() forks a worker and runs."""
    done = _run(NO_WORKER, nproc="2:8")
    assert done.stdout.splitlines() == [FORK_ERROR] * 5 + ["5", "shut down"], done


ONE_WORKER = PREAMBLE + f"""
pool = IsolatedPool(2, max_tasks_per_worker=int(sys.argv[1]))
limit_processes(4)  # the caller, the manager thread, the keeper and one worker
futures = [pool.submit(abs, -i) for i in range(6)]
concurrent.futures.wait(futures, timeout={EVENT_TIMEOUT})
print(*[outcome(future) for future in futures])
pool.shutdown()
print("shut down")
"""


@needs_a_process_limit
@pytest.mark.parametrize("max_tasks", ["100", "1"], ids=["kept", "recycled"])
def test_tasks_wait_for_the_one_worker_that_could_fork(max_tasks: str) -> None:
    """One worker of two can start: the queued tasks wait for it, and all succeed. With
    no thread left to end a worker (recycled after each task, or at shutdown), the
    manager ends it itself; the slot it frees lets the next worker start."""
    done = _run(ONE_WORKER, max_tasks, nproc="1:8")
    assert done.stdout.splitlines() == ["0 1 2 3 4 5", "shut down"], done


NO_THREAD = PREAMBLE + f"""
pool = IsolatedPool(2)
for _ in range(2):
    try:
        future = pool.submit(abs, -1)
    except RuntimeError as e:
        print(f"RuntimeError: {{e}}")
    else:
        concurrent.futures.wait([future], timeout={EVENT_TIMEOUT})
        print(future._state)
limit_processes(8)
print(outcome(pool.submit(abs, -3)))
pool.shutdown()
print("shut down")
"""


@needs_a_process_limit
def test_a_manager_thread_that_cannot_start_leaves_the_pool_as_it_was() -> None:
    """No thread can start: each submit() raises (not only the first, the next leaving
    a future pending forever); once threads can start, the pool runs, and shutdown()
    (and the interpreter's exit) return."""
    done = _run(NO_THREAD, nproc="1:8")
    assert done.stdout.splitlines() == ["RuntimeError: can't start new thread"] * 2 + [
        "3", "shut down"], done


NO_DESCRIPTORS = PREAMBLE + f"""
import errno
from pwsup import run_isolated
run_isolated(abs, 1)  # the keeper runs: what fails is the worker's own set-up
before = set(os.listdir("/proc/self/fd"))
pool = IsolatedPool(1)
resource.setrlimit(resource.RLIMIT_NOFILE,
                   (len(before) + 64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
fillers = []
try:
    while True:
        fillers.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE, e
for _ in range(int(sys.argv[1])):  # so many descriptors free: the set-up fails later on
    os.close(fillers.pop())
error = pool.submit(abs, -1).exception({EVENT_TIMEOUT})
print(type(error).__name__, error.errno == errno.EMFILE)
for fd in fillers:
    os.close(fd)
print(outcome(pool.submit(abs, -2)))
pool.shutdown()
print(sorted(set(os.listdir("/proc/self/fd")) ^ before))
"""


@pytest.mark.parametrize("free", ["0", "2", "4"], ids=["task-pipe", "reply-pipe", "eventfd"])
def test_a_worker_without_descriptors_fails_its_task_and_the_pool_carries_on(free: str) -> None:
    """Out of descriptors when a worker's task pipe, reply pipe or eventfd is created:
    the queued task fails with that OSError (EMFILE), as a failed fork would; nothing
    half set up stays open; once descriptors are free again the pool forks a worker and
    runs; after shutdown() none of its descriptors remains."""
    done = _run(NO_DESCRIPTORS, free)
    assert done.stdout.splitlines() == ["OSError True", "2", "[]"], done
