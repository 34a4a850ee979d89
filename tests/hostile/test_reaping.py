"""Every process pwsup forks is reaped before pwsup exits, on every exit path.

The class: each way a run ends — success, failure, SIGTERM, SIGINT, SIGQUIT, the time
limit, a configuration error found after the resolver ran, a remote stop — offline and
reporting to a server. The test process is a child subreaper (see conftest), so whatever
pwsup leaves when it exits, a live process or a zombie, becomes the test process's child:
right after pwsup's exit the test process must have no child but those it started itself.
No one else reaps for pwsup here: it is not PID 1, and the test does not reap until after
it has looked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from helpers import procs
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import PWSUP, clean_env

pytestmark = pytest.mark.hostile

WAIT_FOR_STDIN = textwrap.dedent("""
    import os, sys
    print("ready", flush=True)
    sys.stdin.readline()
    sys.exit(int(os.environ.get("EXIT", "0")))
""")

PATHS = ["success", "failure", "SIGTERM", "SIGINT", "SIGQUIT", "time-limit"]


def _orphans(exclude: set[int]) -> list[tuple[int, str | None, str | None]]:
    """Children of the test process that it did not start: what pwsup left."""
    me = os.getpid()
    return [(pid, procs.state(pid), procs.cmdline(pid)) for pid in procs.children(me)
            if pid not in exclude]


def _end_run(path: str, proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    if path in ("success", "failure"):
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    elif path != "time-limit":
        proc.send_signal(getattr(signal, path))


def _run_one(path: str, env: dict[str, str], *options: str) -> int:
    if path == "failure":
        env = {**env, "EXIT": "3"}
    timing = ["-t", "1"] if path == "time-limit" else []
    before = set(procs.children(os.getpid()))
    proc = subprocess.Popen([PWSUP, "--process-termination-grace-period", "2", *timing,
                             *options, "--", sys.executable, "-c", WAIT_FOR_STDIN],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        _end_run(path, proc)
        # waitid(WNOWAIT) would leave pwsup a zombie; plain wait() is fine: what pwsup
        # left is reparented to us the moment it exits, before wait() returns.
        code = proc.wait(timeout=30)
        left = _orphans(before | {proc.pid})
        assert left == [], f"{path}: pwsup (exit {code}) left {left}"
        return code
    finally:
        _close(proc)


def _close(proc: subprocess.Popen[bytes]) -> None:
    """Close the test's ends of the pipes; kill and reap pwsup if a failed test left it."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()
    if proc.poll() is None:
        proc.kill()
        proc.wait()


EXPECTED = {"success": 0, "failure": 3, "SIGTERM": 143, "SIGINT": 130, "SIGQUIT": 131,
            "time-limit": 124}


@pytest.mark.parametrize("path", PATHS)
def test_offline_every_exit_path_leaves_no_process(path: str) -> None:
    assert _run_one(path, clean_env()) == EXPECTED[path]


@pytest.mark.parametrize("path", PATHS)
def test_reporting_every_exit_path_leaves_no_process(path: str) -> None:
    with FakeCloudReactor() as api:
        api.create_task("reaping-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        code = _run_one(path, env, "-n", "reaping-task", "--api-final-update-timeout", "5")
    assert code == EXPECTED[path]


def test_a_resolver_failure_leaves_no_process(tmp_path: object) -> None:
    """The resolver runs, fails (a missing file), and pwsup exits 78: the resolver is
    reaped too."""
    before = set(procs.children(os.getpid()))
    missing = os.path.join(str(tmp_path), "missing.env")
    done = subprocess.run([PWSUP, "--env", f"FILE:{missing}", "--", "true"], env=clean_env(),
                          capture_output=True, timeout=30, check=False)
    assert done.returncode == 78, done
    assert _orphans(before) == []


def test_a_remote_stop_leaves_no_process() -> None:
    with FakeCloudReactor() as api:
        api.create_task("reaping-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        before = set(procs.children(os.getpid()))
        proc = subprocess.Popen(
            [PWSUP, "-n", "reaping-task", "--api-heartbeat-interval", "0.2",
             "--process-termination-grace-period", "2", "--", sys.executable, "-c",
             WAIT_FOR_STDIN], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            (execution_uuid,) = api.executions
            api.mark_stopped(execution_uuid)
            code = proc.wait(timeout=30)
            assert _orphans(before | {proc.pid}) == []
        finally:
            _close(proc)
    assert code == 75
