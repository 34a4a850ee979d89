"""When the reporter has died for good, pwsup never blocks the command.

The fault: the reporter process killed again and again until its restarts are used up,
while the command's output is captured for the report (`--num-log-lines-sent-on-failure`:
the command writes into pipes the reporter reads). From then on the parent passes the
output through itself: the command writes megabytes and finishes, every byte reaches
pwsup's stdout, and the final outcome is still logged. Status datagrams sent meanwhile go
nowhere and harm nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import PWSUP, clean_env

pytestmark = pytest.mark.hostile

RESTARTS = 6
"""pwsup restarts a dead reporter this many times (link.RESTART_DELAYS), then goes on
without one."""
SIZE = 4 * 1024 * 1024

WRITER = textwrap.dedent(f"""
    import os, sys
    from pwsup import StatusUpdater
    print("ready", flush=True)
    sys.stdin.readline()
    with StatusUpdater() as updater:
        updater.send_update(success_count=1, last_status_message="into the void")
    block = b"x" * 65536
    for _ in range({SIZE} // 65536):
        os.write(1, block)
    os.write(2, b"the command is done\\n")
""")


def _reporter_of(pwsup_pid: int) -> int | None:
    for pid in procs.children(pwsup_pid):
        cmdline = procs.cmdline(pid) or ""
        if cmdline.startswith("pwsup reporter") and procs.state(pid) not in (None, "Z"):
            return pid
    return None


def test_the_command_is_never_blocked_once_the_reporter_is_gone_for_good() -> None:
    with FakeCloudReactor() as api:
        api.create_task("gone-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        proc = subprocess.Popen(
            [PWSUP, "-n", "gone-task", "--num-log-lines-sent-on-failure", "10",
             "--enable-status-update-listener", "--api-final-update-timeout", "2", "--",
             sys.executable, "-c", WRITER],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            assert proc.stdin is not None
            assert proc.stdout.readline() == b"ready\n"
            killed: set[int] = set()
            for _ in range(RESTARTS + 1):
                found: list[int] = []

                def new_reporter(found: list[int] = found) -> bool:
                    pid = _reporter_of(proc.pid)
                    if pid is not None and pid not in killed:
                        found.append(pid)
                    return bool(found)

                procs.wait_until(new_reporter, EVENT_TIMEOUT, "a (new) reporter")
                killed.add(found[0])
                os.kill(found[0], 9)
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            out = proc.stdout.read()  # to EOF: the whole output, passed through by pwsup
            assert proc.wait(timeout=EXIT_TIMEOUT) == 0
            assert proc.stderr is not None
            err = proc.stderr.read().decode()
        finally:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert len(out) == SIZE, len(out)
    assert "the command is done" in err
    assert "carrying on without it" in err
    assert "succeeded" in err  # the final outcome is still logged
    assert _reporter_of(os.getpid()) is None
