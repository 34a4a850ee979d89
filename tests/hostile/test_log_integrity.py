"""Nothing the outside controls can forge pwsup's log, and a broken stderr cannot stop it.

The class of input: text that reaches a log line from outside — argv (including bytes that
are not UTF-8), the command's name, an error a server or a library returns — holding
newlines, carriage returns, terminal escapes, NUL, Unicode line separators. Every log line
pwsup writes must then still be exactly one line that starts with its own prefix (text) or
parses as one JSON object (JSON lines), with the text escaped, not lost.

The environment: stderr closed, pointing at a full disk (/dev/full), at a broken pipe, or
at a pipe whose reader stopped reading. The command's exit status is still pwsup's, and a
signal is still forwarded at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import procs
from helpers.runner import PWSUP, clean_env
from pwsup.util.log import JSON_KEYS, Log, escape

pytestmark = pytest.mark.hostile

FORGERIES = ["x\nPWSUP: ERROR: forged", "x\rPWSUP: INFO: forged", "\x1b[2J\x1b[31mred",
             "a\u2028b\u2029c\x85d", "nul\x00byte", "tab\there", "\udcff\udcfe not utf-8",
             "\x7f\x9b", "ok é ü 中"]


def _lines_of(fd_reader: int) -> bytes:
    chunks = []
    while chunk := os.read(fd_reader, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("json_lines", [False, True])
@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60) | st.sampled_from(FORGERIES))
def test_any_message_is_exactly_one_line(json_lines: bool, text: str) -> None:
    read_fd, write_fd = os.pipe()
    try:
        log = Log("test", json_lines=json_lines, fd=write_fd)
        log.error(text)
        log.info("next")
        os.close(write_fd)
        write_fd = -1
        lines = _lines_of(read_fd).decode("utf-8").split("\n")
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    assert lines[-1] == ""  # ends with a newline
    assert len(lines) == 3, lines  # two records, two lines
    first = lines[0]
    if json_lines:
        record = json.loads(first)
        assert set(record) == set(JSON_KEYS)
        assert record["message"] == escape(text)
    else:
        assert first.startswith("PWSUP: ")
        assert first.endswith(escape(text))
    assert first.isprintable()


def test_lone_surrogates_from_argv_come_out_as_the_bytes_they_were() -> None:
    assert escape("a\udcffb") == "a\\xffb"
    assert escape("line\nbreak") == "line\\nbreak"
    assert escape("été") == "été"


def _script_named(tmp_path: object, name: bytes) -> bytes:
    path = os.path.join(os.fsencode(str(tmp_path)), name)
    with open(path, "wb") as f:
        f.write(b"#!/bin/sh\nexit 3\n")
    os.chmod(path, 0o755)
    return path


@pytest.mark.parametrize("name", [b"evil\nPWSUP: INFO: Task 'x' succeeded", b"bad\xff\xfename",
                                  b"esc\x1b[31mred", b"cr\rline"])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_hostile_command_name_cannot_forge_a_line(tmp_path: object, name: bytes,
                                                    log_format: str) -> None:
    script = _script_named(tmp_path, name)
    env = {k.encode(): v.encode() for k, v in clean_env().items()}
    done = subprocess.run([PWSUP.encode(), b"--log-format", log_format.encode(), b"--", script],
                          env=env, capture_output=True, timeout=20, check=False)
    assert done.returncode == 3, done
    lines = done.stderr.decode("utf-8").splitlines()
    assert lines, done
    for line in lines:
        if log_format == "json":
            json.loads(line)
        else:
            assert line.startswith("PWSUP: "), lines


def _run_with_stderr(stderr: object, *command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PWSUP, "--", *command], env=clean_env(), stdout=subprocess.DEVNULL,
                          stderr=stderr, timeout=20, check=False)  # type: ignore[call-overload]


@pytest.mark.parametrize("code", [0, 5])
def test_stderr_closed_or_on_a_full_disk_keeps_the_exit_status(code: int) -> None:
    failing = f"echo noise >&2; exit {code}"
    with open("/dev/full", "wb") as full:
        assert _run_with_stderr(full, "sh", "-c", failing).returncode == code
    closed = subprocess.run(
        ["sh", "-c", f'exec 2>&-; exec "$0" -- sh -c "{failing}"', PWSUP], env=clean_env(),
        stdout=subprocess.DEVNULL, timeout=20, check=False)
    assert closed.returncode == code


READ_LINK = """
import os, sys
try:
    seen = os.readlink(f"/proc/self/fd/{sys.argv[1]}")
except OSError:
    seen = "closed"
with open(sys.argv[2], "w") as out:
    out.write(seen)
"""
"""Writes what the descriptor argv[1] is ("closed" if it is) into the file argv[2]."""


@pytest.mark.parametrize("fd", [0, 1, 2])
def test_a_closed_standard_descriptor_reaches_the_command_closed(
        fd: int, tmp_path: Path) -> None:
    """pwsup takes /dev/null for a closed stdin, stdout or stderr for itself only: the command
    gets it closed, as it would without pwsup (never a pwsup pipe, never pwsup's /dev/null)."""
    out = tmp_path / "fd"
    done = subprocess.run(
        ["sh", "-c", f'exec {fd}<&-; exec "$@"', "sh",
         PWSUP, "--", sys.executable, "-c", READ_LINK, str(fd), str(out)],
        env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=20, check=False)
    assert done.returncode == 0
    assert out.read_text() == "closed"


def test_a_broken_pipe_on_stderr_keeps_the_exit_status() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # nobody will ever read: every write is EPIPE
    try:
        done = _run_with_stderr(write_fd, "sh", "-c", "exit 7")
    finally:
        os.close(write_fd)
    assert done.returncode == 7


def test_a_stalled_stderr_reader_does_not_delay_signals() -> None:
    """The command fills pwsup's stderr pipe (its reader stopped reading) and blocks on it;
    SIGTERM to pwsup must still reach the command and end the run: pwsup's log lines about
    it are dropped, not waited for."""
    read_fd, write_fd = os.pipe()
    filler = ("import os, sys\nprint('ready', flush=True)\n"
              "while True:\n    os.write(2, b'x' * 4096)\n")
    proc = subprocess.Popen([PWSUP, "--process-termination-grace-period", "30", "--",
                             sys.executable, "-c", filler], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=write_fd)
    os.close(write_fd)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        procs.wait_until(lambda: _pipe_full(read_fd), 10, "the stderr pipe to fill")
        proc.send_signal(signal.SIGTERM)
        # The command dies of the forwarded SIGTERM: far sooner than the 30 s grace period
        # after which pwsup would SIGKILL it.
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        os.close(read_fd)


def _pipe_full(read_fd: int) -> bool:
    import fcntl
    import termios

    available = bytearray(4)
    fcntl.ioctl(read_fd, termios.FIONREAD, available)
    return int.from_bytes(available, sys.byteorder) >= 65536 - 4096
