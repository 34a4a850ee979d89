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
