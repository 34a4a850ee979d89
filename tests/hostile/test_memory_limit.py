"""--memory-limit holds for the whole tree, including what left the command's group.

The class: the memory is held by a daemon that escaped the command's process group
(fork, setsid, fork: another session, re-parented to pwsup) and ignores SIGTERM, while the
command itself stays small and waits. The escaped daemon's memory still counts, and it is
ended with the rest: SIGTERM at once, SIGKILL after the grace period; pwsup exits 123.
"""

from __future__ import annotations

import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import EXIT_TIMEOUT, SLACK
from helpers.runner import CHILD_LIFETIME, pwsup_cmd

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.runner import Running

pytestmark = pytest.mark.hostile

GRACE = 1.0

ESCAPED_GROWER = f"""
import os, signal, sys, time
read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.write(write_end, str(os.getpid()).encode())
        os.close(write_end)
        blocks = []
        for _ in range(20):  # 200 MiB in 10 MiB steps
            blocks.append(b"x" * (10 * 1024 * 1024))
            time.sleep(0.05)
        time.sleep({CHILD_LIFETIME})
        os._exit(0)
    os._exit(0)
os.close(write_end)
print("daemon", os.read(read_end, 64).decode(), os.getpid(), flush=True)
os.wait()
time.sleep({CHILD_LIFETIME})
"""


def test_a_setsid_daemon_over_the_limit_is_counted_and_killed(
        start: Callable[..., Running]) -> None:
    pwsup = start(pwsup_cmd([sys.executable, "-c", textwrap.dedent(ESCAPED_GROWER)],
                            "--memory-limit", "100M",
                            "--process-termination-grace-period", f"{GRACE:g}"))
    _, daemon_pid, command_pid = pwsup.expect("daemon ").split()
    daemon = procs.Proc.of(int(daemon_pid))
    assert procs.pgid_of(daemon.pid) != int(command_pid)  # it left the command's group
    assert pwsup.wait(EXIT_TIMEOUT) == 123, pwsup.describe()
    assert not daemon.alive(), pwsup.describe()
    assert "exceeded its memory limit:" in pwsup.stderr
    # SIGTERM was ignored: SIGKILL came after one grace period, not two.
    assert pwsup.elapsed < 2 * GRACE + SLACK, pwsup.describe()
