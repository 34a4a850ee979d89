"""pwsup leaves nothing behind: whatever carries the run's cookie is gone once the run is.

The class: a command that starts daemons that escaped its process group (fork, setsid,
fork), one of them ignoring SIGTERM, and every way the run can end — the command exits, its
time limit passes, pwsup gets SIGTERM, pwsup is SIGKILLed (offline, and reporting, where the
server then records ABORTED) — and run_isolated, whose function starts children and daemons
and then times out, crashes, or whose caller is interrupted. Afterwards no live process
holds the run's cookie (`PWSUP_RUN_COOKIE`, read from a daemon's /proc/<pid>/environ).

The test process is a child subreaper (see conftest): a daemon re-parented on pwsup's death
comes to it rather than to init, and the cleanup fixture kills it if pwsup did not.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import CHILD_LIFETIME, clean_env, pwsup_cmd, python_cmd
from helpers.scripts import SPAWN_DAEMON

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.runner import Running

pytestmark = pytest.mark.hostile

COOKIE = "PWSUP_RUN_COOKIE"
GRACE = 1.0
NOTICE = 1.0
"""pwsup's watchdog notices its parent's death within this many seconds (documented)."""

DAEMONIZE = f"""
import os, signal, sys, time
def daemon(ignore_term):
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if ignore_term:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.write(write_end, str(os.getpid()).encode())
            os.close(write_end)
            time.sleep({CHILD_LIFETIME})
            os._exit(0)
        os._exit(0)
    os.close(write_end)
    pid = os.read(read_end, 64).decode()
    os.wait()
    print("daemon", pid, flush=True)
daemon(False)
daemon(True)
print("ready", os.getpid(), flush=True)
if sys.argv[1] == "wait":
    time.sleep({CHILD_LIFETIME})
"""
"""Command: two setsid()'d, double-forked daemons (`daemon <pid>` each; the second ignores
SIGTERM), then `ready <pid>`; then it exits ("exit") or waits ("wait")."""


def cookie_of(pid: int) -> str:
    with open(f"/proc/{pid}/environ", "rb") as f:
        for entry in f.read().split(b"\0"):
            name, _, value = entry.partition(b"=")
            if name == COOKIE.encode():
                return value.decode().split()[0]
    raise AssertionError(f"process {pid} has no {COOKIE}")


def holders(cookie: str) -> list[tuple[int, str | None]]:
    """Live processes whose environment carries `cookie`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if cookie.encode() in data and procs.alive(int(name)):
            found.append((int(name), procs.cmdline(int(name))))
    return found


def started(pwsup: Running) -> tuple[procs.Proc, procs.Proc, procs.Proc, str]:
    """The daemon that dies of SIGTERM, the one that ignores it, the command; the cookie."""
    dies = procs.Proc.of(int(pwsup.expect("daemon ").split()[1]))
    ignores = procs.Proc.of(int(pwsup.expect("daemon ").split()[1]))
    command = pwsup.expect_ready()
    assert procs.pgid_of(dies.pid) != command.pid, "the daemon did not leave the group"
    return dies, ignores, command, cookie_of(dies.pid)


def assert_nothing_left(cookie: str, pwsup: Running) -> None:
    left = holders(cookie)
    assert left == [], f"left running with the run's cookie: {left}\n{pwsup.describe()}"


@pytest.mark.parametrize("end", ["exit", "time-limit", "SIGTERM"])
def test_daemons_are_gone_when_pwsup_exits(start: Callable[..., Running], end: str) -> None:
    options = ["--process-termination-grace-period", str(GRACE)]
    if end == "time-limit":
        options += ["-t", "1"]
    pwsup = start(pwsup_cmd(python_cmd(DAEMONIZE, "exit" if end == "exit" else "wait"),
                            *options))
    dies, ignores, _command, cookie = started(pwsup)
    if end == "SIGTERM":
        pwsup.signal(signal.SIGTERM)
    pwsup.wait()
    assert not dies.alive(), pwsup.describe()
    assert not ignores.alive(), pwsup.describe()
    assert_nothing_left(cookie, pwsup)


def _kill_pwsup(pwsup: Running) -> None:
    dies, ignores, command, cookie = started(pwsup)
    killed = time.monotonic()
    pwsup.signal(signal.SIGKILL)
    assert pwsup.wait() == -signal.SIGKILL
    gone = procs.wait_for_exit([dies, command], NOTICE + SLACK) - killed
    assert gone < NOTICE + SLACK, f"{gone:.3f} s"
    procs.wait_for_exit([ignores], NOTICE + GRACE + SLACK)
    assert_nothing_left(cookie, pwsup)


def test_kill_9_of_pwsup_offline_leaves_no_daemon(start: Callable[..., Running]) -> None:
    """SIGKILL pwsup: its watchdog ends the command and both daemons (TERM, grace, KILL)."""
    _kill_pwsup(start(pwsup_cmd(python_cmd(DAEMONIZE, "wait"),
                                "--process-termination-grace-period", str(GRACE))))


def test_kill_9_of_pwsup_reporting_leaves_no_daemon_and_reports_aborted(
        start: Callable[..., Running]) -> None:
    with FakeCloudReactor() as api:
        api.create_task("leftovers-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        pwsup = start(pwsup_cmd(python_cmd(DAEMONIZE, "wait"), "-n", "leftovers-task",
                                "--process-termination-grace-period", str(GRACE)), env=env)
        _kill_pwsup(pwsup)
        final = api.wait_for(lambda r: r.method == "PATCH" and isinstance(r.json, dict)
                             and r.json.get("status") == "ABORTED", timeout=SLACK + GRACE)
        assert final.response_status is not None
        assert final.response_status < 300


def test_kill_9_of_pwsup_during_the_leftover_sweep_offline_leaves_no_daemon(
        start: Callable[..., Running]) -> None:
    """The command has exited and pwsup is waiting out the grace period of a daemon that
    ignores SIGTERM: the watchdog is still there for a SIGKILL of pwsup at that moment."""
    sweep_grace = 3 * GRACE
    pwsup = start(pwsup_cmd(python_cmd(DAEMONIZE, "exit"),
                            "--process-termination-grace-period", str(sweep_grace)))
    _dies, ignores, _command, cookie = started(pwsup)
    pwsup.expect(lambda line: "left behind by the command" in line, stream="err")
    pwsup.signal(signal.SIGKILL)
    assert pwsup.wait() == -signal.SIGKILL
    procs.wait_for_exit([ignores], NOTICE + sweep_grace + SLACK)
    assert_nothing_left(cookie, pwsup)


def test_keep_descendants_is_still_honoured_after_kill_9(
        start: Callable[..., Running]) -> None:
    """--keep-descendants: the watchdog ends the command's group, not the daemons."""
    pwsup = start(pwsup_cmd(python_cmd(DAEMONIZE, "wait"), "--keep-descendants",
                            "--process-termination-grace-period", str(GRACE)))
    dies, ignores, command, _cookie = started(pwsup)
    pwsup.signal(signal.SIGKILL)
    procs.wait_for_exit([command], NOTICE + SLACK)
    try:
        assert dies.alive(), pwsup.describe()
        assert ignores.alive(), pwsup.describe()
    finally:
        procs.kill_quietly(dies.pid)
        procs.kill_quietly(ignores.pid)


# -- run_isolated -------------------------------------------------------------------------------



def _start_children_then(end: str) -> None:
    """fn: a child in the worker's group and an escaped daemon; then hang or crash."""
    import subprocess
    import sys

    subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({CHILD_LIFETIME})"])
    out = subprocess.run([sys.executable, "-c", SPAWN_DAEMON], capture_output=True,
                         text=True, check=True).stdout
    os.write(1, f"daemon {out.strip()}\n".encode())
    if end == "crash":
        os._exit(3)
    time.sleep(CHILD_LIFETIME)


@pytest.mark.parametrize("end", ["timeout", "crash"])
def test_run_isolated_takes_fn_s_children_and_daemons_along(
        end: str, capfd: pytest.CaptureFixture[str]) -> None:
    from pwsup import run_isolated
    from pwsup.errors import WorkerCrashed, WorkerTimeout

    procs.keeper_started()  # it lives as long as this process: not the call's leftover
    before = {pid for pid in procs.pid_tree(os.getpid()) if procs.alive(pid)}
    expected = WorkerTimeout if end == "timeout" else WorkerCrashed
    with pytest.raises(expected):
        run_isolated(_start_children_then, end, timeout=3, grace=GRACE)
    daemon = int(capfd.readouterr().out.split("daemon ")[1].split()[0])
    left = [(pid, procs.cmdline(pid)) for pid in procs.pid_tree(os.getpid())
            if procs.alive(pid) and pid not in before]
    assert left == [], f"fn's processes outlived the call: {left}"
    assert not procs.alive(daemon)
