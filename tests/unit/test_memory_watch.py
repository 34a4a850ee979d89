"""The memory watch's pieces: one process's resident set, and the tree it adds up."""

from __future__ import annotations

import os
import signal
import subprocess
from types import SimpleNamespace

import pytest

from pwsup.supervisor.memory import MemoryWatch, resident_bytes
from pwsup.supervisor.state import Attempt

COOKIE = "0123456789abcdef0123456789abcdef"


def test_resident_bytes_of_a_live_process_and_of_none() -> None:
    block = b"x" * (32 * 1024 * 1024)
    assert resident_bytes(os.getpid()) >= len(block)
    assert resident_bytes(2 ** 22 + 1) == 0  # above the default pid_max: never a process


@pytest.mark.parametrize("subreaper", [True, False])
def test_the_tree_holds_the_group_and_the_cookies_holders(subreaper: bool) -> None:
    """Without the subreaper role the group's members and the cookie's holders are looked
    for too; with it, pwsup's descendants are the tree. Either way the command, a member
    of its group and a holder of the cookie in another session are in it."""
    env = {**os.environ, "PWSUP_RUN_COOKIE": COOKIE}
    command = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!; wait"], env=env,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    holder = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
    try:
        assert command.stdout is not None
        member = int(command.stdout.readline())
        run = SimpleNamespace(subreaper=subreaper, secrets=None, reporter=SimpleNamespace(
            pid=None, seed=SimpleNamespace(cookie=COOKIE)))
        watch = MemoryWatch(run, 1 << 30, 0.25,  # type: ignore[arg-type]
                            escalate=lambda attempt: None)
        pids, _holders = watch.tree(Attempt(1, command.pid))
        assert {command.pid, member, holder.pid} <= set(pids)
        assert len(pids) == len(set(pids))
    finally:
        os.killpg(command.pid, signal.SIGKILL)
        holder.kill()
        command.wait()
        holder.wait()
        command.stdout.close()  # type: ignore[union-attr]
