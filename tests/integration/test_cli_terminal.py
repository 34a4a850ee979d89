"""On a terminal: the command's process group gets the foreground when pwsup had it, and
pwsup takes the terminal back afterwards; a background pwsup leaves the terminal alone."""

from __future__ import annotations

import os
import pty
import select
import time

import pytest

from helpers.runner import PWSUP, pwsup_cmd, python_cmd

SHOW_FOREGROUND = """
import os
print("foreground", os.tcgetpgrp(0) == os.getpgrp(), os.getpgrp() == os.getpid(), flush=True)
"""
"""Child: `foreground <its group has the terminal> <it leads its own group>`."""


def _read_until_eof(fd: int, timeout: float) -> str:
    """Everything written to the pty, until every holder of its other side closed it."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no EOF on the pty within {timeout:g} s: {b''.join(chunks)!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def _pty_child(argv: list[str], env: dict[str, str], mode: str) -> None:
    """In the pty's session leader (a fork of the test process): run argv, never return.

    "leader": exec argv itself. "foreground"/"background": fork; the child execs argv in
    the leader's (foreground) group or in a new (background) group; the leader waits,
    reports whether its group has the terminal again, and exits with argv's status."""
    try:
        if mode == "leader":
            os.execve(argv[0], argv, env)
        child = os.fork()
        if child == 0:
            try:
                if mode == "background":
                    os.setpgid(0, 0)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        _, status = os.waitpid(child, 0)
        back = os.tcgetpgrp(0) == os.getpgrp()
        os.write(1, f"terminal back {back}\n".encode())
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    finally:
        os._exit(127)


def run_on_a_pty(argv: list[str], env: dict[str, str], mode: str = "leader",
                 timeout: float = 10.0) -> tuple[int, str]:
    """Run argv on a new pty (see `_pty_child` for `mode`); return (exit code, output)."""
    pid, master = pty.fork()
    if pid == 0:
        _pty_child(argv, env, mode)
    try:
        output = _read_until_eof(master, timeout)
        pidfd = os.pidfd_open(pid)
        try:
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        reaped, status = os.waitpid(pid, os.WNOHANG)
        assert reaped == pid, f"the pty's session leader did not exit: {output!r}"
        return os.waitstatus_to_exitcode(status), output
    finally:
        os.close(master)


@pytest.mark.parametrize("mode", ["leader", "foreground"])
def test_command_gets_the_terminals_foreground_when_pwsup_had_it(env: dict[str, str],
                                                                 mode: str) -> None:
    """pwsup in the terminal's foreground group: the command's own group becomes it."""
    code, output = run_on_a_pty(pwsup_cmd(python_cmd(SHOW_FOREGROUND)), env, mode)
    assert code == 0, output
    assert "foreground True True" in output, output


def test_pwsup_takes_the_terminal_back_after_the_command(env: dict[str, str]) -> None:
    """Once the command is done, the terminal's foreground is pwsup's group again."""
    code, output = run_on_a_pty(pwsup_cmd(python_cmd(SHOW_FOREGROUND)), env, "foreground")
    assert code == 0, output
    assert "terminal back True" in output, output


def test_every_attempt_gets_the_terminals_foreground(env: dict[str, str]) -> None:
    """pwsup takes the terminal back between attempts and hands it to the next one."""
    code = SHOW_FOREGROUND + "raise SystemExit(3)\n"
    status, output = run_on_a_pty(
        [PWSUP, "-r", "1", "--process-retry-delay", "0.1", "--", *python_cmd(code)], env)
    assert status == 3, output
    assert output.count("foreground True True") == 2, output


def test_background_pwsup_does_not_take_the_terminal(env: dict[str, str]) -> None:
    """pwsup in a background group of the terminal leaves the foreground where it was."""
    code, output = run_on_a_pty(pwsup_cmd(python_cmd(SHOW_FOREGROUND)), env, "background")
    assert code == 0, output
    assert "foreground False True" in output, output
    assert "terminal back True" in output, output
