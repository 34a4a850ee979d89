"""A fork the kernel refuses with ENOMEM is the same one clear line and exit 71 as EAGAIN.

ENOMEM is what fork() returns when the kernel will not commit memory for the copy of the
address space. It cannot be provoked honestly with rlimits (a fork under RLIMIT_AS copies
an address space that already fits), so a seccomp filter (tests/helpers/no_fork.py) makes
the kernel answer every process-creating system call of pwsup with ENOMEM, threads
excepted. The first fork each mode makes fails: the command offline, the reporter when
reporting, the secrets resolver, a run_isolated worker (whose keeper cannot start either:
the call is then made unguarded, and the worker's failure is what the caller sees).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from helpers import no_fork, procs
from helpers.bounds import EXIT_TIMEOUT
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import PWSUP, clean_env
from helpers.scripts import RUN_ISOLATED_FORK_ERROR

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

pytestmark = [
    pytest.mark.hostile,
    pytest.mark.skipif(not no_fork.SUPPORTED, reason="the seccomp filter is x86_64 Linux's"),
]

ENOMEM_LINE = "Cannot allocate memory"


def _run(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    before = set(procs.children(os.getpid()))
    done = subprocess.run([sys.executable, no_fork.__file__, *argv], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=EXIT_TIMEOUT, check=False)
    left = [pid for pid in procs.children(os.getpid()) if pid not in before]
    assert left == [], f"left {left}\n{done.stderr}"
    return done


def _assert_one_clear_line(done: subprocess.CompletedProcess[str], what: str) -> None:
    assert done.returncode == 71, done
    assert "Traceback" not in done.stderr, done.stderr
    assert "ran" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if "could not start" in line]
    assert len(lines) == 1, done.stderr
    assert f"could not start {what}: {ENOMEM_LINE}" in lines[0], done.stderr
    assert lines[0].rstrip().endswith((ENOMEM_LINE, "; nothing was started")), done.stderr


def test_the_command_cannot_be_forked_offline() -> None:
    _assert_one_clear_line(_run([PWSUP, "--", "/bin/echo", "ran"], clean_env()), "the command")


def test_the_reporter_cannot_be_forked_when_reporting() -> None:
    with FakeCloudReactor() as api:
        api.create_task("fork-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        done = _run([PWSUP, "-n", "fork-task", "--", "/bin/echo", "ran"], env)
        assert api.executions == {}, "no reporter: nothing can reach the server"
    _assert_one_clear_line(done, "the reporter")


def test_the_resolver_cannot_be_forked(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SECRET_X=1\n")
    done = _run([PWSUP, "--env", f"FILE:{secrets}", "--", "/bin/echo", "ran"], clean_env())
    _assert_one_clear_line(done, "the secrets resolver")




def test_run_isolated_gives_the_caller_a_fork_error() -> None:
    done = _run([sys.executable, "-c", RUN_ISOLATED_FORK_ERROR], clean_env())
    assert done.returncode == 71, done
    assert done.stdout == f"ForkError: could not start the run_isolated worker: {ENOMEM_LINE}\n"
