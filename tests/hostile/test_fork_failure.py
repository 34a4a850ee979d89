"""A fork that fails is one clear line and exit 71, never a traceback, and leaves nothing.

The class: every process pwsup forks — the command (first attempt and a retry), the
reporter, the secrets resolver, a run_isolated worker — meeting EAGAIN under
`RLIMIT_NPROC`. The limit is real: pwsup runs under a real user id of its own (the limit
is not enforced for root's processes, nor with CAP_SYS_RESOURCE or CAP_SYS_ADMIN, so
those are dropped; the effective user stays root so the interpreter can still be read),
and `prlimit` gives it a process count it reaches exactly where a case wants. A user id
no one else uses makes the count this run's own.

Each case: the message is `could not start <what>: Resource temporarily unavailable` on
one line, the exit code is 71 (EX_OSERR), the test process (a child subreaper) is left
with no process of pwsup's, and, when a reporter exists, the server gets the final FAILED.
ENOMEM, which a limit cannot provoke (a fork under `RLIMIT_AS` copies an address space
that already fits), is the kernel's answer under a seccomp filter in test_fork_enomem.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import PWSUP, clean_env
from helpers.scripts import RUN_ISOLATED_FORK_ERROR

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

pytestmark = [
    pytest.mark.hostile,
    pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("setpriv")
                                                 and shutil.which("prlimit")),
                       reason="needs root, setpriv and prlimit to run pwsup under a user "
                              "whose process limit is enforced"),
]

EAGAIN_LINE = "Resource temporarily unavailable"
UID = 400000 + os.getpid() % 100000
"""A user id of this test run alone: RLIMIT_NPROC counts every process of the user."""


def _limited(nproc: int, argv: Sequence[str]) -> list[str]:
    return ["setpriv", f"--ruid={UID}", "--bounding-set=-sys_resource,-sys_admin",
            "--inh-caps=-sys_resource,-sys_admin", "prlimit", f"--nproc={nproc}", *argv]


def _run(nproc: int, argv: Sequence[str], env: dict[str, str],
         stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    before = set(procs.children(os.getpid()))
    done = subprocess.run(_limited(nproc, argv), env=env, stdin=stdin, capture_output=True,
                          text=True, timeout=EXIT_TIMEOUT, check=False)
    left = [(pid, procs.cmdline(pid)) for pid in procs.children(os.getpid())
            if pid not in before]
    assert left == [], f"pwsup left {left}\n{done.stderr}"
    return done


def _assert_one_clear_line(stderr: str, what: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if f"could not start {what}:" in line]
    assert len(lines) == 1, stderr
    assert lines[0].rstrip().endswith(EAGAIN_LINE) or f"{EAGAIN_LINE};" in lines[0], stderr
    assert lines[0].count("could not start") == 1, stderr


def test_the_command_cannot_be_forked_offline() -> None:
    done = _run(1, [PWSUP, "--", "/bin/echo", "ran"], clean_env())
    assert done.returncode == 71, done
    assert "ran" not in done.stdout
    _assert_one_clear_line(done.stderr, "the command")


def test_the_reporter_cannot_be_forked_offline() -> None:
    """Offline the command starts first; the reporter after it cannot: the command is
    stopped and reaped, and pwsup exits 71."""
    done = _run(2, [PWSUP, "--", sys.executable, "-c", "import time; time.sleep(30)"],
                clean_env())
    assert done.returncode == 71, done
    _assert_one_clear_line(done.stderr, "the reporter")


def test_the_reporter_cannot_be_forked_when_reporting() -> None:
    with FakeCloudReactor() as api:
        api.create_task("fork-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        done = _run(1, [PWSUP, "-n", "fork-task", "--", "/bin/echo", "ran"], env)
        assert api.executions == {}, "no reporter: nothing can reach the server"
    assert done.returncode == 71, done
    assert "ran" not in done.stdout
    _assert_one_clear_line(done.stderr, "the reporter")


def test_the_command_cannot_be_forked_when_reporting_and_the_server_hears_of_it() -> None:
    with FakeCloudReactor() as api:
        api.create_task("fork-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        # pwsup, its reporter and the reporter's one thread (threads count too): three.
        done = _run(3, [PWSUP, "-n", "fork-task", "--api-final-update-timeout", "5", "--",
                        "/bin/echo", "ran"], env)
        (execution,) = api.executions.values()
    assert done.returncode == 71, done
    assert "ran" not in done.stdout
    _assert_one_clear_line(done.stderr, "the command")
    assert execution["status"] == "FAILED", execution


def test_the_resolver_cannot_be_forked(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SECRET_X=1\n")
    done = _run(1, [PWSUP, "--env", f"FILE:{secrets}", "--", "/bin/echo", "ran"], clean_env())
    assert done.returncode == 71, done
    assert "ran" not in done.stdout
    _assert_one_clear_line(done.stderr, "the secrets resolver")


FAIL_AFTER_READY = textwrap.dedent("""
    import sys
    print("ready", flush=True)
    sys.stdin.readline()
    sys.exit(3)
""")


@pytest.mark.parametrize("online", [False, True], ids=["offline", "reporting"])
def test_a_retry_cannot_be_forked(online: bool) -> None:
    """The first attempt runs; while it does, another process of the same user takes the
    last slot, so the retry's fork fails: 71, and the reporter (there from the start) is
    not left behind."""
    api = FakeCloudReactor() if online else None
    extra = {}
    options = ["-r", "2", "--process-retry-delay", "0"]
    if api is not None:
        api.__enter__()
        api.create_task("fork-task")
        extra = {"PROC_WRAPPER_API_BASE_URL": api.base_url,
                 "PROC_WRAPPER_API_KEY": api.api_key}
        options += ["-n", "fork-task", "--api-final-update-timeout", "5"]
    before = set(procs.children(os.getpid()))
    limit = 4 if online else 3
    pwsup = subprocess.Popen(_limited(limit, [PWSUP, *options, "--", sys.executable, "-c",
                                              FAIL_AFTER_READY]),
                             env=clean_env(extra), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder = None
    try:
        assert pwsup.stdout is not None
        assert pwsup.stdin is not None
        assert pwsup.stdout.readline() == "ready\n"
        # pwsup, its reporter (with its thread, reporting) and the command: at the limit.
        # One more of the same user's takes the slot the command frees, so the retry
        # cannot have it.
        holder = subprocess.Popen(["setpriv", f"--ruid={UID}", sys.executable, "-c",
                                   "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        pwsup.stdin.write("go\n")
        pwsup.stdin.close()
        code = pwsup.wait(timeout=EXIT_TIMEOUT)
        stderr = pwsup.stderr.read() if pwsup.stderr is not None else ""
        left = [(pid, procs.cmdline(pid)) for pid in procs.children(os.getpid())
                if pid not in before | {pwsup.pid, holder.pid}]
        assert left == [], f"pwsup left {left}\n{stderr}"
        assert code == 71, stderr
        # The server is not asserted here: at this limit the reporter cannot start a
        # thread either, so whether FAILED reaches it depends on the reporter's needs.
        _assert_one_clear_line(stderr, "the command")
    finally:
        if holder is not None:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=EVENT_TIMEOUT)
        if pwsup.poll() is None:
            pwsup.kill()
        pwsup.wait()
        for stream in (pwsup.stdout, pwsup.stderr):
            if stream is not None:
                stream.close()
        if api is not None:
            api.__exit__(None, None, None)




def test_run_isolated_gives_the_caller_a_fork_error() -> None:
    done = _run(1, [sys.executable, "-c", RUN_ISOLATED_FORK_ERROR], clean_env())
    assert done.returncode == 71, done
    assert done.stdout == ("ForkError: could not start the run_isolated worker: "
                           f"{EAGAIN_LINE}\n"), done
