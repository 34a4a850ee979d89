"""The API key: cleaned, checked before the first request, never echoed, never visible.

The class of input: a key as it arrives from a file or a secret store (with a trailing
newline, CR/LF, surrounding blanks) — accepted, and sent clean; a key that cannot go in an
HTTP header (a space, a control character, a newline in the middle, non-ASCII) — one clear
error at start, exit 78, never a retry loop and never the key in any output. A key given
with `-k` is not left readable in pwsup's command line (`/proc/PID/cmdline`, `ps`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import clean_env, run

pytestmark = pytest.mark.hostile

PWSUP = os.path.join(os.path.dirname(sys.executable), "pwsup")
TASK = "credentials-task"
FAST = ("--api-retry-delay", "0.2", "--api-request-timeout", "1",
        "--api-task-execution-creation-error-timeout", "2", "--api-final-update-timeout", "2")
KEY = "k3y-Of-The_Test.0123456789"


@pytest.fixture
def api() -> FakeCloudReactor:
    with FakeCloudReactor({KEY: "developer"}) as fake:
        fake.create_task(TASK)
        yield fake


@pytest.mark.parametrize("dirty", [KEY + "\n", KEY + "\r\n", f"  {KEY}\t", f"\n{KEY}\r\n\r\n"])
def test_a_key_with_blanks_around_it_is_sent_clean(api: FakeCloudReactor, dirty: str) -> None:
    env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url, "PROC_WRAPPER_API_KEY": dirty})
    result = run([PWSUP, "-n", TASK, *FAST, "-p", "--", "true"], env, timeout=20)
    assert result.returncode == 0, result
    assert api.requests, result
    for request in api.requests:
        assert (request.header("Authorization") or "").split()[-1] == KEY
    assert api.violations == []


def test_a_key_read_from_a_file_secret_loses_its_newline(api: FakeCloudReactor,
                                                          tmp_path: object) -> None:
    """The usual way to hand over a key: a file with a trailing newline, resolved by pwsup."""
    key_file = os.path.join(str(tmp_path), "api-key")
    with open(key_file, "w") as f:
        f.write(KEY + "\n")
    env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                     "PROC_WRAPPER_API_KEY_FOR_PROC_WRAPPER_TO_RESOLVE": f"FILE:{key_file}"})
    result = run([PWSUP, "-n", TASK, *FAST, "-p", "--", "true"], env, timeout=20)
    assert result.returncode == 0, result
    assert {(r.header("Authorization") or "").split()[-1] for r in api.requests} == {KEY}


@pytest.mark.parametrize("bad", [
    "has space", "new\nline", "bell\x07", "del\x7f", "sécret", "ключ",
    "tab\tinside", "cr\rinside", "\u2028separator", "emoji\U0001f511",
])
@pytest.mark.parametrize("how", ["env", "-k"])
def test_a_key_that_cannot_be_a_header_is_one_error_at_start(api: FakeCloudReactor, bad: str,
                                                             how: str) -> None:
    key = "S3CR3T" + bad + "S3CR3T"
    env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url})
    options: list[str] = []
    if how == "env":
        env["PROC_WRAPPER_API_KEY"] = key
    else:
        options = ["-k", key]
    result = run([PWSUP, "-n", TASK, *FAST, *options, "--", "sh", "-c", "echo started"], env,
                 timeout=20)
    assert result.returncode == 78, result
    assert "started" not in result.stdout
    assert api.requests == []  # checked before any request: no retry loop
    assert "S3CR3T" not in result.stderr  # never echoed, not even in part
    assert "--api-key" in result.stderr or "PROC_WRAPPER_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


WAIT_AND_REPORT = textwrap.dedent("""
    import os, sys
    print("ready", os.getppid(), flush=True)
    sys.stdin.readline()
""")


def test_a_key_given_with_dash_k_is_not_in_the_visible_command_line(
        api: FakeCloudReactor, start: object) -> None:
    env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url})
    running = start([PWSUP, "-n", TASK, *FAST, "-k", KEY, "--", sys.executable, "-c",  # type: ignore[operator]
                     WAIT_AND_REPORT], env=env, stdin=subprocess.PIPE)
    line = running.expect("ready ", timeout=15)
    parent = int(line.split()[1])
    pids = [parent, *_children(parent)]
    for pid in pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        if pid != pids[-1] or b"pwsup" in cmdline:  # pwsup's own processes, not the command
            assert KEY.encode() not in cmdline, (pid, cmdline)
    running.write("done\n")
    assert running.wait(15) == 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found
