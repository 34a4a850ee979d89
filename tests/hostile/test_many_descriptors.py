"""pwsup started with more than a thousand open descriptors works as with three.

The fault: a parent that opened many files (a server, a test runner, a shell script that
redirects a lot) starts pwsup, or calls run_isolated, with all of them inherited. Every
descriptor pwsup opens then gets a number above FD_SETSIZE (1024), which select() cannot
watch (`ValueError: filedescriptor out of range in select()`). Each path that waits on a
descriptor of its own is run that way: the exit status of the command, secrets from a file
(the resolver's pipe), a time limit (reaping on a pidfd), reporting with captured output
(the reporter, its pipes and its reaping), embedded reporting, and run_isolated with a
time-out (the worker's pidfd, the sweep of what is left, the keeper).
"""

from __future__ import annotations

import resource
import signal
import textwrap
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import CHILD_LIFETIME, clean_env, pwsup_cmd, python_cmd, run

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from helpers.runner import Running

_HARD_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

pytestmark = [
    pytest.mark.hostile,
    pytest.mark.skipif(_HARD_LIMIT != resource.RLIM_INFINITY and _HARD_LIMIT < 2048,
                       reason=f"RLIMIT_NOFILE's hard limit is {_HARD_LIMIT}, below 2048"),
]

INHERITED = 1100
"""Descriptors opened before pwsup starts: its own ones are numbered above 1024."""

OPEN_MANY = textwrap.dedent(f"""
    import os, resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    for _ in range({INHERITED}):
        os.set_inheritable(os.open(os.devnull, os.O_RDONLY), True)
    probe = os.dup(0)  # the number the next descriptor gets
    assert probe > 1024, probe
    os.close(probe)
""")
"""Raise the soft limit on open files, then open INHERITED descriptors, inheritable."""

LAUNCHER = OPEN_MANY + textwrap.dedent("""
    import sys
    os.execv(sys.argv[1], sys.argv[1:])
""")
"""`python -c LAUNCHER program args...`: runs `program` with the descriptors inherited."""


def _with_many_descriptors(args: Sequence[str]) -> list[str]:
    return python_cmd(LAUNCHER, *args)


def _assert_clean(stderr: str, context: object) -> None:
    """No traceback, nor select()'s complaint, on stderr."""
    assert "Traceback" not in stderr, context
    assert "out of range" not in stderr, context


def test_the_command_s_exit_status_comes_through() -> None:
    for status in (0, 1, 5, 42, 255):
        done = run(_with_many_descriptors(pwsup_cmd(["sh", "-c", f"exit {status}"])),
                   clean_env())
        assert done.returncode == status, done
        _assert_clean(done.stderr, done)


def test_secrets_from_a_file_resolve(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("MANY_FDS_SECRET=from-the-file\n")
    done = run(_with_many_descriptors(pwsup_cmd(
        ["sh", "-c", 'echo "got $MANY_FDS_SECRET"'], "-e", f"file://{secrets}")), clean_env())
    assert done.returncode == 0, done
    assert done.stdout == "got from-the-file\n", done
    _assert_clean(done.stderr, done)


GRACE = 1.0


@pytest.mark.parametrize(("command", "options", "took"), [
    (f"sleep {CHILD_LIFETIME}", (), 1),
    (f"trap '' TERM; sleep {CHILD_LIFETIME}", (), 1 + GRACE),  # SIGKILL after the grace
    (f"sleep {CHILD_LIFETIME}", ("-r", "1", "--process-retry-delay", "0"), 2),  # 2 attempts
], ids=["SIGTERM", "SIGKILL", "retried"])
def test_a_time_limit_still_ends_the_command(command: str, options: tuple[str, ...],
                                             took: float) -> None:
    done = run(_with_many_descriptors(pwsup_cmd(
        ["sh", "-c", command], "-t", "1", "--process-termination-grace-period", str(GRACE),
        *options)), clean_env())
    assert done.returncode == 124, done
    assert done.elapsed < took + SLACK, done
    _assert_clean(done.stderr, done)


NOTICE = 1.0
"""pwsup's watchdog notices its parent's death within this many seconds (documented)."""

STUBBORN = f"""
    import os, signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the grace period, then SIGKILL
    os.write(1, b"out 1\\n")
    print("ready", os.getpid(), flush=True)
    time.sleep({CHILD_LIFETIME})
"""
"""Command: writes `out 1` and `ready <pid>`, ignores SIGTERM, and waits."""


def _kill_pwsup(start: Callable[..., Running], env: dict[str, str], *options: str) -> None:
    """Start pwsup on STUBBORN, SIGKILL it: what is left of it ends the command."""
    pwsup = start(_with_many_descriptors(pwsup_cmd(
        python_cmd(STUBBORN), "--process-termination-grace-period", str(GRACE), *options)),
        env=env)
    assert pwsup.read_line() == "out 1"
    command = pwsup.expect_ready()
    pwsup.signal(signal.SIGKILL)
    assert pwsup.wait() == -signal.SIGKILL
    procs.wait_for_exit([command], NOTICE + GRACE + SLACK)
    _assert_clean(pwsup.stderr, pwsup.describe())


def test_a_sigkill_of_pwsup_offline_still_ends_the_command(
        start: Callable[..., Running]) -> None:
    """The watchdog's sweep: SIGTERM, the grace period, SIGKILL."""
    _kill_pwsup(start, clean_env())


def test_a_sigkill_of_pwsup_reporting_with_captured_output_ends_the_command(
        start: Callable[..., Running]) -> None:
    """The reporter reads the command's output from pipes and passes it on; once pwsup is
    gone, it ends the command and reports ABORTED."""
    with FakeCloudReactor() as api:
        api.create_task("many-fds-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        _kill_pwsup(start, env, "-n", "many-fds-task", "--num-log-lines-sent-on-failure", "2")
        final = api.wait_for(lambda r: r.method == "PATCH" and isinstance(r.json, dict)
                             and r.json.get("status") == "ABORTED", timeout=GRACE + SLACK)
        assert final.response_status is not None
        assert final.response_status < 300
        assert api.violations == []


EMBEDDED_CALLER = OPEN_MANY + textwrap.dedent("""
    import sys
    from pwsup.compat import ProcWrapper, ProcWrapperParams
    from pwsup.embedded import monitor

    params = ProcWrapperParams(env=dict(os.environ))
    params.task_name, params.api_base_url, params.api_key = sys.argv[1:4]
    params.process_retry_delay = 0
    print("result", ProcWrapper(params=params).managed_call(lambda *_: 42), flush=True)
    monitor._current.close()  # what the end of a long-lived caller's process does
""")


def test_embedded_reporting() -> None:
    with FakeCloudReactor() as api:
        api.create_task("many-fds-embedded")
        done = run(python_cmd(EMBEDDED_CALLER, "many-fds-embedded", api.base_url,
                              api.api_key), clean_env())
        (execution,) = api.executions.values()
        assert api.violations == []
    assert done.returncode == 0, done
    assert done.stdout == "result 42\n", done
    assert execution["status"] == "SUCCEEDED", execution
    _assert_clean(done.stderr, done)


TIMEOUT = 2.0

ISOLATED_CALLER = OPEN_MANY + textwrap.dedent(f"""
    import signal, subprocess, time
    from pwsup import run_isolated

    def stubborn():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the child inherits it
        child = subprocess.Popen(["sleep", "{CHILD_LIFETIME}"])
        print("worker", os.getpid(), child.pid, flush=True)
        time.sleep({CHILD_LIFETIME})

    print("result", run_isolated(lambda: 42), flush=True)
    started = time.monotonic()
    try:
        run_isolated(stubborn, timeout={TIMEOUT}, grace={GRACE})
    except TimeoutError as e:
        print("timed out", e.pid, time.monotonic() - started, flush=True)
""")
"""The caller: a call that returns 42, then one that times out, its worker and the worker's
child ignoring SIGTERM (both get SIGKILL after the grace period)."""


def test_run_isolated_returns_and_times_out(start: Callable[..., Running]) -> None:
    caller = start(python_cmd(ISOLATED_CALLER))
    assert caller.read_line() == "result 42"
    worker, child = (procs.Proc.of(int(pid)) for pid in caller.expect("worker").split()[1:])
    line = caller.expect("timed out")
    assert caller.wait() == 0, caller.describe()
    _, _, pid, took = line.split()
    assert int(pid) == worker.pid
    assert float(took) < TIMEOUT + GRACE + SLACK, line
    assert not worker.alive()
    assert not child.alive()
    _assert_clean(caller.stderr, caller.describe())
