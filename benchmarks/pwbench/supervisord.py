"""A supervisord (benchmarks/.venv's) running N copies of one program, and everything it
started gone afterwards.

`supervisord -n` is a child of the driver, in a directory of its own, with one program of
`numprocs=N` (`svc_00`, `svc_01`, ...): autostart, no restarts, stopped with SIGTERM and
`stopwaitsecs=10`, as under examples/supervisord.conf. No control socket: the driver finds
the services in /proc (supervisord's children) and ends the whole thing with SIGTERM to
supervisord, which stops every program and exits.

Every process seen in supervisord's tree is remembered by a pidfd (checked against its
start time, so never a reused pid). On close, supervisord gets SIGTERM (SIGKILL if it is not
gone within `STOP_CAP`); then every remembered process must be gone: one that is still
there is SIGKILLed through its pidfd and reported.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from pwbench import proctree
from pwbench.procs import wait_readable
from pwbench.venv import Venv

STOPWAITSECS = 10
STOP_CAP = STOPWAITSECS + 10.0
"""Seconds supervisord may take to stop every program and exit after SIGTERM."""
GONE_CAP = 5.0
"""Seconds a process supervisord started may outlive supervisord before it is killed."""


def _conf(directory: Path, argv: Sequence[str], count: int) -> str:
    return textwrap.dedent(f"""
        [supervisord]
        logfile={directory}/supervisord.log
        pidfile={directory}/supervisord.pid
        childlogdir={directory}
        loglevel=info
        nodaemon=true
        silent=true

        [program:svc]
        command={shlex.join(argv).replace("%", "%%")}
        process_name=svc_%(process_num)02d
        numprocs={count}
        autostart=true
        autorestart=false
        startsecs=0
        stopsignal=TERM
        stopwaitsecs={STOPWAITSECS}
        stopasgroup=false
        killasgroup=false
        redirect_stderr=true
        stdout_logfile={directory}/svc_%(process_num)02d.log
    """)


class Supervisord:
    """`with Supervisord(venv, directory, argv, env, count) as sup:` — N services of argv."""

    def __init__(self, venv: Venv, directory: Path, argv: Sequence[str],
                 env: Mapping[str, str], count: int) -> None:
        directory.mkdir(parents=True)
        self.dir = directory
        conf = directory / "supervisord.conf"
        conf.write_text(_conf(directory, argv, count), encoding="utf-8")
        self._tracked: dict[proctree.Seen, int] = {}
        self.leftovers: list[str] = []
        with open(directory / "supervisord.stderr", "wb") as stderr:
            self.process = subprocess.Popen(
                [str(venv.bin("supervisord")), "-n", "-c", str(conf)], env=dict(env),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        self.pidfd = os.pidfd_open(self.process.pid)

    def __enter__(self) -> Supervisord:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def services(self, kids: dict[int, list[proctree.Seen]]) -> list[proctree.Seen]:
        """supervisord's children (the services' top processes) in the scan `kids`, and
        every process below them remembered for the clean-up."""
        self.track(proctree.descendants(self.process.pid, kids))
        return kids.get(self.process.pid, [])

    def track(self, seen: Sequence[proctree.Seen]) -> None:
        for process in seen:
            if process in self._tracked:
                continue
            try:
                pidfd = os.pidfd_open(process.pid)
            except OSError:
                continue  # already gone
            now = proctree.stat(process.pid)
            if now is None or now[1] != process.start:
                os.close(pidfd)  # gone, and the pid was reused meanwhile
                continue
            self._tracked[process] = pidfd

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.dir / "supervisord.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop supervisord and check that nothing it started is left (killing what is).
        Idempotent."""
        if self.pidfd < 0:
            return
        if self.process.poll() is None:
            self.services(proctree.children())  # the latest processes, for the check below
            signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
            if wait_readable(self.pidfd, STOP_CAP) is None:
                self.leftovers.append(f"supervisord did not exit within {STOP_CAP:g} s "
                                      "of SIGTERM: SIGKILLed")
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        self.process.wait()
        os.close(self.pidfd)
        self.pidfd = -1
        deadline = time.monotonic() + GONE_CAP
        for process, pidfd in self._tracked.items():
            if wait_readable(pidfd, deadline - time.monotonic()) is None:
                name = proctree.exe(process.pid) or "?"
                self.leftovers.append(f"pid {process.pid} ({name}) outlived supervisord: "
                                      "SIGKILLed")
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
        self._tracked.clear()
