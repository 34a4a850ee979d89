"""pwsup under the real supervisord (the one installed in the venv), as in
examples/supervisord.conf: supervisord signals pwsup only, and pwsup ends the service's
whole process group within its own grace period, before supervisord's stopwaitsecs.

Each test runs its own supervisord (`-n`, a child of the test) in a temporary directory,
with one program: `pwsup --service --process-termination-grace-period 1 -- python
service.py MODE`. The service forks a grandchild (same process group) and announces both
pids on a FIFO the test holds open, so the test learns about every (re)start as an event;
processes are awaited with pidfds. Only supervisord's state has no event to wait on: it is
polled with `supervisorctl status`, with a deadline. Every test ends with `supervisorctl
shutdown`, waits for supervisord to exit, and checks that every pid it saw is gone.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, SLACK
from helpers.runner import CHILD_LIFETIME, PWSUP, PYTHON, clean_env

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BIN = Path(sys.executable).parent
SUPERVISORD = str(BIN / "supervisord")
SUPERVISORCTL = str(BIN / "supervisorctl")
GRACE = 1.0
"""pwsup's --process-termination-grace-period in these tests."""
STOPWAITSECS = 10
"""supervisord's stopwaitsecs: comfortably above GRACE, as the timing rule asks."""
STATE_TIMEOUT = EVENT_TIMEOUT
ESCALATED = "did not exit within the grace period"
"""What pwsup logs (in the program's log) when it has to SIGKILL the service."""

SERVICE = textwrap.dedent(f"""
    import json, os, signal, sys, time

    fifo, mode = sys.argv[1], sys.argv[2]

    def on_term(signum, frame):
        os._exit(0)

    def disposition():
        if mode == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif mode in ("clean-exit", "status-updates"):
            signal.signal(signal.SIGTERM, on_term)
        # "die-of-term": the default disposition

    disposition()
    grandchild = os.fork()
    if grandchild == 0:
        disposition()
        time.sleep({CHILD_LIFETIME})
        os._exit(0)
    line = json.dumps({{"service": os.getpid(), "grandchild": grandchild,
                       "pgid": os.getpgrp()}}) + "\\n"
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, line.encode())
    os.close(fd)

    updater = None
    if mode == "status-updates":
        from pwsup import StatusUpdater
        updater = StatusUpdater()
    deadline = time.monotonic() + {CHILD_LIFETIME}
    count = 0
    while time.monotonic() < deadline:
        count += 1
        if updater is not None:
            updater.send_update(success_count=count, last_status_message=f"tick {{count}}")
        time.sleep(0.05)
""")


class Announcements:
    """The FIFO the services write their pids to. Held open for reading and writing by
    the test, so a service's open() never blocks and the reader never sees EOF."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.pending = b""

    def next(self, timeout: float = STATE_TIMEOUT) -> dict[str, procs.Proc | int]:
        """The next service start: its processes (pid + start time) and process group."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no service announced itself within {timeout:g} s")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                self.pending += os.read(self.fd, 4096)
        line, self.pending = self.pending.split(b"\n", 1)
        data = json.loads(line)
        return {"service": procs.Proc.of(data["service"]),
                "grandchild": procs.Proc.of(data["grandchild"]), "pgid": data["pgid"]}

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Supervisord:
    """A supervisord with one program, `svc`, in a directory of its own."""

    def __init__(self, directory: Path, pwsup_args: list[str], mode: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.conf = directory / "supervisord.conf"
        self.log = directory / "supervisord.log"
        self.program_log = directory / "svc.log"
        service = directory / "service.py"
        service.write_text(SERVICE, encoding="utf-8")
        self.announcements = Announcements(directory / "pids.fifo")
        # A unix socket path has at most 107 bytes: keep it short whatever the tmp_path.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="pwsup-sv-", dir="/tmp"))
        sock = self.socket_dir / "supervisor.sock"
        command = [PWSUP, "--service", "--process-termination-grace-period", f"{GRACE:g}",
                   *pwsup_args, "--", PYTHON, str(service), str(self.announcements.path), mode]
        self.conf.write_text(textwrap.dedent(f"""
            [unix_http_server]
            file={sock}

            [supervisord]
            logfile={directory}/supervisord.log
            pidfile={directory}/supervisord.pid
            childlogdir={directory}
            loglevel=info
            nodaemon=true
            silent=true

            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

            [supervisorctl]
            serverurl=unix://{sock}

            [program:svc]
            command={" ".join(command)}
            autostart=true
            autorestart=false
            startsecs=1
            stopsignal=TERM
            stopwaitsecs={STOPWAITSECS}
            stopasgroup=false
            killasgroup=false
            redirect_stderr=true
            stdout_logfile={self.program_log}
        """), encoding="utf-8")
        self.env = {**clean_env(), **(extra_env or {})}
        self.seen: list[procs.Proc] = []
        with open(directory / "supervisord.stderr", "wb") as stderr:
            self.process = subprocess.Popen(
                [SUPERVISORD, "-n", "-c", str(self.conf)], env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        self.seen.append(procs.Proc.of(self.process.pid))

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SUPERVISORCTL, "-c", str(self.conf), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)

    def state(self) -> str:
        """The program's state as `supervisorctl status` shows it ("" while unreachable)."""
        fields = self.ctl("status", "svc").stdout.split()
        return fields[1] if len(fields) > 1 and fields[0] == "svc" else ""

    def wait_for_state(self, wanted: str, timeout: float = STATE_TIMEOUT) -> None:
        procs.wait_until(lambda: self.state() == wanted, timeout,
                         f"svc to be {wanted} (log:\n{self.describe()})", interval=0.1)

    def started(self) -> dict[str, procs.Proc | int]:
        """Wait for the next start of the service and for supervisord to call it RUNNING."""
        started = self.announcements.next()
        self.seen += [started["service"], started["grandchild"]]  # type: ignore[list-item]
        self.wait_for_state("RUNNING")
        return started

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        program = self.program_log.read_text(errors="replace") if self.program_log.exists() \
            else ""
        return f"--- supervisord.log ---\n{self.log_text()}--- svc.log ---\n{program}"

    def shutdown(self) -> None:
        """`supervisorctl shutdown`, then wait for supervisord to exit (it is our child)."""
        if self.process.poll() is None:
            self.ctl("shutdown")
            try:
                self.process.wait(timeout=STOPWAITSECS + 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"supervisord did not shut down\n{self.describe()}") from None
        self.announcements.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and procs.pgid_of(int(entry)) == pgid and procs.alive(int(entry)):
            members.append(int(entry))
    return members


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Callable[..., Supervisord]]:
    """Factory: supervisord(mode, *pwsup_args). Shut down after the test, and nothing that
    it ran may outlive it."""
    started: list[Supervisord] = []

    def _start(mode: str, *pwsup_args: str,
               extra_env: dict[str, str] | None = None) -> Supervisord:
        instance = Supervisord(tmp_path, list(pwsup_args), mode, extra_env)
        started.append(instance)
        return instance

    yield _start
    for instance in started:
        instance.shutdown()
        procs.wait_for_exit(instance.seen, SLACK)


def _stop_and_check(sup: Supervisord, started: dict[str, procs.Proc | int],
                    exit_status: int) -> float:
    """`supervisorctl stop svc`; check it took less than stopwaitsecs, that the whole
    process group is gone, and what supervisord logged. Returns how long the stop took."""
    begin = time.monotonic()
    result = sup.ctl("stop", "svc")
    took = time.monotonic() - begin
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{sup.describe()}"
    assert "stopped" in result.stdout, result.stdout
    assert took < STOPWAITSECS, f"the stop took {took:.1f} s\n{sup.describe()}"
    # pwsup has exited: it leaves nothing of the group behind.
    procs.wait_for_exit([started["service"], started["grandchild"]], SLACK)  # type: ignore[list-item]
    pgid = started["pgid"]
    assert isinstance(pgid, int)
    assert group_members(pgid) == [], "the service's process group must be gone"
    log = sup.log_text()
    assert f"stopped: svc (exit status {exit_status})" in log, sup.describe()
    assert "SIGKILL" not in log, f"supervisord had to kill pwsup\n{sup.describe()}"
    assert sup.state() == "STOPPED"
    return took


def test_reaches_running_and_a_clean_exit_on_sigterm_is_exit_status_0(
        supervisord: Callable[..., Supervisord]) -> None:
    sup = supervisord("clean-exit")
    started = sup.started()
    assert started["service"].alive()  # type: ignore[union-attr]
    assert started["grandchild"].alive()  # type: ignore[union-attr]
    _stop_and_check(sup, started, exit_status=0)
    program_log = sup.program_log.read_text(errors="replace")
    assert ESCALATED not in program_log, (
        f"a service that exits on SIGTERM needs no grace period\n{sup.describe()}")


def test_death_by_the_forwarded_sigterm_is_exit_status_143(
        supervisord: Callable[..., Supervisord]) -> None:
    sup = supervisord("die-of-term")
    started = sup.started()
    _stop_and_check(sup, started, exit_status=143)


def test_a_service_ignoring_sigterm_is_killed_by_pwsup_at_its_grace_period(
        supervisord: Callable[..., Supervisord]) -> None:
    """pwsup's escalation ends it (exit status 137), well before supervisord's own SIGKILL
    at stopwaitsecs."""
    sup = supervisord("ignore-term")
    started = sup.started()
    took = _stop_and_check(sup, started, exit_status=137)
    assert took >= GRACE - 0.05, f"SIGKILL came before the grace period ({took:.2f} s)"
    assert took < GRACE + SLACK, f"the stop took {took:.2f} s"
    program_log = sup.program_log.read_text(errors="replace")
    assert ESCALATED in program_log, sup.describe()


def test_restart_starts_a_new_service_and_ends_the_old_one(
        supervisord: Callable[..., Supervisord]) -> None:
    sup = supervisord("clean-exit")
    first = sup.started()
    result = sup.ctl("restart", "svc")
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"
    second = sup.started()
    procs.wait_for_exit([first["service"], first["grandchild"]], SLACK)  # type: ignore[list-item]
    assert first["pgid"] != second["pgid"]
    assert isinstance(first["pgid"], int)
    assert group_members(first["pgid"]) == []
    assert second["service"].alive()  # type: ignore[union-attr]
    assert second["grandchild"].alive()  # type: ignore[union-attr]
    _stop_and_check(sup, second, exit_status=0)


def test_status_updates_flow_to_the_api_server_under_supervisord(
        supervisord: Callable[..., Supervisord]) -> None:
    """Online under supervisord: the service's StatusUpdater values reach the API server on
    heartbeats, and `supervisorctl stop` ends the run, reported ABORTED."""
    from helpers.fake_cloudreactor import FakeCloudReactor

    with FakeCloudReactor() as api:
        api.create_task("sv-task")
        sup = supervisord("status-updates", "-n", "sv-task", "--api-heartbeat-interval", "0.3",
                          "--enable-status-update-listener",
                          "--status-update-socket-port", str(free_udp_port()),
                          extra_env={"PROC_WRAPPER_API_BASE_URL": api.base_url,
                                     "PROC_WRAPPER_API_KEY": api.api_key})
        started = sup.started()
        api.wait_for(lambda r: (r.json or {}).get("success_count", 0) > 1, timeout=EVENT_TIMEOUT)
        _stop_and_check(sup, started, exit_status=0)
        statuses = [(r.json or {}).get("status") for r in api.requests]
        assert statuses[0] == "RUNNING"
        assert statuses[-1] == "ABORTED"
        assert api.violations == []


def test_supervisord_shutdown_leaves_nothing_behind(
        supervisord: Callable[..., Supervisord]) -> None:
    """`supervisorctl shutdown` with the service running: supervisord stops it through
    pwsup, and every process either of them started is gone once supervisord exits."""
    sup = supervisord("ignore-term")
    started = sup.started()
    sup.shutdown()
    assert sup.process.returncode == 0, sup.describe()
    procs.wait_for_exit(sup.seen, SLACK)
    pgid = started["pgid"]
    assert isinstance(pgid, int)
    assert group_members(pgid) == []
    assert "stopped: svc (exit status 137)" in sup.log_text(), sup.describe()
