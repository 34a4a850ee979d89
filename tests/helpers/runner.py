"""Running pwsup from tests: the command line, a clean environment, and two ways to run it.

- `run()`: start, feed stdin, wait, and return a `Result` (for runs that need no interplay).
- `Running`: a started pwsup whose output is read line by line with deadlines (select on
  raw pipes) and whose exit is awaited on a pidfd, so a test can react to "ready" lines and
  measure exactly when pwsup exited.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

BIN = Path(sys.executable).parent
PWSUP = str(BIN / "pwsup")
"""The console script of the venv running pytest."""
PROC_WRAPPER = str(BIN / "proc_wrapper")
PYTHON = sys.executable
HELPERS = Path(__file__).resolve().parent
PRINT_SIGNALS = str(HELPERS / "print_signals.py")
LOG_PREFIX = "PWSUP: "
CHILD_LIFETIME = 30
"""Every child that waits for something gives up after this many seconds, so even a broken
cleanup never leaves a process running for long."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without any PROC_WRAPPER_* / PWSUP_* variable (they configure pwsup), plus
    `extra`. Without an API key pwsup runs offline."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROC_WRAPPER_", "PWSUP_"))}
    env.update(extra or {})
    return env


def python_cmd(code: str, *args: str) -> list[str]:
    """argv running a (dedented) Python snippet with this interpreter."""
    return [PYTHON, "-c", textwrap.dedent(code), *args]


def pwsup_cmd(command: Sequence[str], *options: str, program: str = PWSUP) -> list[str]:
    """`pwsup [options] -- command...`"""
    return [program, *options, "--", *command]


def print_signals_cmd(*options: str) -> list[str]:
    """argv of the print_signals.py child (see its docstring for the options)."""
    return [PYTHON, PRINT_SIGNALS, *options]


@dataclass(frozen=True)
class Result:
    """A finished pwsup run."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    """Seconds from just before the start to the exit (seen by the test process)."""

    @property
    def log_lines(self) -> list[str]:
        """pwsup's own log lines."""
        return [line for line in self.stderr.splitlines() if line.startswith(LOG_PREFIX)]

    @property
    def command_stderr(self) -> list[str]:
        """stderr lines that are not pwsup's log lines (the command's own)."""
        return [line for line in self.stderr.splitlines() if not line.startswith(LOG_PREFIX)]

    def __str__(self) -> str:
        return (f"{self.args!r} exited {self.returncode} after {self.elapsed:.3f} s\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")


def run(args: Sequence[str], env: Mapping[str, str], *, input: str | None = None,
        timeout: float = EXIT_TIMEOUT, cwd: str | Path | None = None) -> Result:
    """Run to completion; stdin is `input` (or /dev/null). Raises on `timeout`."""
    start = time.monotonic()
    done = subprocess.run(list(args), input=input, capture_output=True, text=True,
                          env=dict(env), cwd=cwd, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL if input is None else None)
    return Result(list(args), done.returncode, done.stdout, done.stderr,
                  time.monotonic() - start)


class _Stream:
    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fd = fd
        self.pending = b""
        self.lines: list[str] = []
        self.next = 0
        self.eof = False

    def feed(self, data: bytes) -> None:
        if not data:
            self.eof = True
            if self.pending:
                self.lines.append(self.pending.decode("utf-8", "replace"))
                self.pending = b""
            return
        *complete, self.pending = (self.pending + data).split(b"\n")
        self.lines.extend(line.decode("utf-8", "replace") for line in complete)

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines) + self.pending.decode(
            "utf-8", "replace")


class Running:
    """A started process (normally pwsup) with line-by-line access to its output.

    Use as a context manager (or call `close()`): pipes and the pidfd are closed, and the
    process is SIGKILLed and reaped if it is still running.
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str], *, stdin: int | None =
                 subprocess.DEVNULL, cwd: str | Path | None = None) -> None:
        self.args = list(args)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(env), cwd=cwd,
                                     bufsize=0)
        self.pid = self.proc.pid
        self.pidfd = os.pidfd_open(self.pid)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.streams = {"out": _Stream("out", self.proc.stdout.fileno()),
                        "err": _Stream("err", self.proc.stderr.fileno())}
        self.exited_at: float | None = None
        self.returncode: int | None = None

    # -- output ----------------------------------------------------------------------------

    def _pump(self, timeout: float) -> None:
        """Wait up to `timeout` for output or the exit, and take in whatever arrived."""
        by_fd = {s.fd: s for s in self.streams.values() if not s.eof}
        watch = list(by_fd)
        if self.exited_at is None:
            watch.append(self.pidfd)
        if not watch:
            return
        ready, _, _ = select.select(watch, [], [], max(0.0, timeout))
        for fd in ready:
            if fd == self.pidfd:
                self.exited_at = time.monotonic()
            else:
                by_fd[fd].feed(os.read(fd, 65536))

    def read_line(self, stream: str = "out", timeout: float = EVENT_TIMEOUT) -> str:
        """The next line of stdout ("out") or stderr ("err"), without its newline."""
        s = self.streams[stream]
        deadline = time.monotonic() + timeout
        while s.next >= len(s.lines):
            if s.eof:
                raise AssertionError(f"std{stream} of {self.args!r} closed before another "
                                     f"line came\n{self.describe()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line on std{stream} within {timeout:g} s\n"
                                     f"{self.describe()}")
            self._pump(remaining)
        s.next += 1
        return s.lines[s.next - 1]

    def expect(self, match: str | Callable[[str], bool], stream: str = "out",
               timeout: float = EVENT_TIMEOUT) -> str:
        """Read lines until one starts with `match` (or satisfies it); return that line."""
        def matches(line: str) -> bool:
            return line.startswith(match) if isinstance(match, str) else match(line)

        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(stream, max(0.0, deadline - time.monotonic()))
            if matches(line):
                return line

    def expect_ready(self, prefix: str = "ready", timeout: float = EVENT_TIMEOUT) -> procs.Proc:
        """Wait for a `<prefix> <pid>` line; return that process (pid and start time)."""
        line = self.expect(f"{prefix} ", timeout=timeout)
        return procs.Proc.of(int(line.split()[-1]))

    @property
    def stdout(self) -> str:
        return self.streams["out"].text()

    @property
    def stderr(self) -> str:
        return self.streams["err"].text()

    def lines(self, stream: str = "out") -> list[str]:
        """Every complete line read so far (consumed or not)."""
        return list(self.streams[stream].lines)

    def describe(self) -> str:
        state = "running" if self.returncode is None else f"exit {self.returncode}"
        return (f"{self.args!r} ({state})\n--- stdout ---\n{self.stdout}\n"
                f"--- stderr ---\n{self.stderr}")

    # -- input and signals ------------------------------------------------------------------

    def write(self, data: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data.encode())

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def signal(self, signum: int) -> None:
        """Send a signal to pwsup itself (via its pidfd: never to a reused pid)."""
        signal.pidfd_send_signal(self.pidfd, signum)

    # -- exit --------------------------------------------------------------------------------

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Wait for the exit (pidfd), reap it, then read the rest of its output."""
        deadline = time.monotonic() + timeout
        while self.exited_at is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"still running after {timeout:g} s\n{self.describe()}")
            self._pump(remaining)
        self.returncode = self.proc.wait()
        # Output that was written before the exit is in the pipes now; EOF follows unless a
        # descendant still holds them open (e.g. one kept by --keep-descendants).
        drain_deadline = time.monotonic() + 2.0
        while any(not s.eof for s in self.streams.values()):
            remaining = drain_deadline - time.monotonic()
            if remaining <= 0:
                break
            self._pump(remaining)
        return self.returncode

    @property
    def elapsed(self) -> float:
        """Seconds from the start to the exit."""
        assert self.exited_at is not None, "not exited yet"
        return self.exited_at - self.started

    def close(self) -> None:
        if self.proc.returncode is None:
            procs.kill_quietly(self.pid)
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
