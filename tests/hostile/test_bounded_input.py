"""Everything pwsup parses is bounded in size, depth and time.

The class of input: a secret or configuration location that names something other than a
small regular file (a FIFO nobody writes, `/dev/zero`, a directory, a file over
--config-size-limit), documents that are small but build something huge or deep (JSON
nested thousands of levels, a number of thousands of digits, YAML aliases of aliases), a
result file that is a FIFO or a device, and API answers with bodies over 1 MiB. Each is a
clear one-line error and a documented outcome, within seconds: never a hang, a traceback,
or memory filled. A result file that is not a regular file is left where it is, never
removed by the cleanup.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import TYPE_CHECKING

import pytest

from helpers.fake_cloudreactor import FakeCloudReactor, Respond
from helpers.runner import clean_env, pwsup_cmd, run
from pwsup.config.params import Params
from pwsup.config.values import read_result
from pwsup.secrets.errors import FormatError
from pwsup.secrets.formats import MAX_ALIASES, MAX_DEPTH, MAX_NODES, parse

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.hostile

BOMB = "\n".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    + [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)]) + "\n"
"""The "billion laughs": 10 lines, 9**10 values once expanded."""

BAD_DOCUMENTS = [
    ("json", "[" * 5000 + "]" * 5000, "nested"),
    ("json", "[" * 200_000, "nested"),
    ("json", '{"a": ' * (MAX_DEPTH + 5) + "1" + "}" * (MAX_DEPTH + 5), "nested"),
    ("json", "1" * 10_000, "number"),
    ("json", "[" + ",".join(["[]"] * (MAX_NODES + 10)) + "]", "values"),
    ("yaml", BOMB, "values"),
    ("yaml", "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n", "aliases"),
    ("yaml", "- " * 5000 + "x\n", "YAML"),
]


@pytest.mark.parametrize(("fmt", "text", "word"), BAD_DOCUMENTS,
                         ids=[f"{fmt}-{word}-{i}" for i, (fmt, _, word) in
                              enumerate(BAD_DOCUMENTS)])
def test_a_document_that_builds_too_much_is_a_format_error(fmt: str, text: str,
                                                           word: str) -> None:
    with pytest.raises(FormatError, match=word):
        parse(text, fmt)


def test_documents_within_the_bounds_still_parse() -> None:
    assert parse('{"a": ' * 50 + "1" + "}" * 50, "json") is not None
    assert parse("a: &a {x: 1}\nb: *a\nc: *a\n", "yaml") == {"a": {"x": 1}, "b": {"x": 1},
                                                               "c": {"x": 1}}


def _resolve_env_location(location: str, *options: str) -> object:
    """pwsup with one --env location and a command that says it started."""
    return run(pwsup_cmd(["sh", "-c", "echo started"], "--env", location, *options),
               clean_env(), timeout=30)


@pytest.fixture
def fifo(tmp_path: object) -> str:
    path = os.path.join(str(tmp_path), "secrets.env")
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "/dev/urandom", "directory"])
def test_a_file_location_that_is_not_a_regular_file_is_refused(target: str, fifo: str,
                                                                 tmp_path: object) -> None:
    path = {"fifo": fifo, "directory": str(tmp_path)}.get(target, target)
    result = _resolve_env_location(f"FILE:{path}")
    assert result.returncode == 78, result
    assert "started" not in result.stdout
    assert "not a regular file" in result.stderr, result
    assert "Traceback" not in result.stderr


def test_a_file_over_the_size_limit_is_refused_and_the_option_named(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "big.env")
    with open(path, "w") as f:
        f.write("A=" + "x" * 5000 + "\n")
    result = _resolve_env_location(f"FILE:{path}", "--config-size-limit", "1000")
    assert result.returncode == 78, result
    assert "--config-size-limit" in result.stderr, result
    small = _resolve_env_location(f"FILE:{path}", "--config-size-limit", "6000")
    assert small.returncode == 0, small


def test_a_resolved_answer_beyond_its_bound_is_one_error_and_nothing_left(
        tmp_path: object) -> None:
    """Each file within --config-size-limit, together far beyond what the parent takes in
    from the resolver (8 x the limit plus three times the environment): one line, exit 78, the
    output file the resolver wrote removed."""
    locations = []
    for i in range(60):
        path = os.path.join(str(tmp_path), f"part{i}.env")
        with open(path, "w") as f:
            f.write(f"PART_{i}=" + "x" * 950 + "\n")
        locations += ["--env", f"FILE:{path}"]
    output = os.path.join(str(tmp_path), "out.env")
    argv = pwsup_cmd(["sh", "-c", "echo started"], *locations, "--config-size-limit", "1000",
                     "--env-output-filename", output)
    result = run(argv, clean_env(), timeout=30)
    assert result.returncode == 78, result
    assert "started" not in result.stdout
    (line,) = [line for line in result.stderr.splitlines() if "could not be resolved" in line]
    assert "exceed" in line, result
    assert "Traceback" not in result.stderr
    assert not os.path.exists(output)
    fits = run(pwsup_cmd(["sh", "-c", "echo started"], *locations[:4],
                         "--config-size-limit", "1000"), clean_env(), timeout=30)
    assert fits.returncode == 0, fits


@pytest.mark.parametrize(("fmt", "text", "word"), [d for d in BAD_DOCUMENTS if len(d[1]) < 1e6],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 12 else "")
def test_a_hostile_document_in_a_file_is_one_error_at_start(fmt: str, text: str, word: str,
                                                            tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), f"config.{fmt}")
    with open(path, "w") as f:
        f.write(text)
    result = run(pwsup_cmd(["sh", "-c", "echo started"], "--config", f"FILE:{path}"),
                 clean_env(), timeout=30)
    assert result.returncode == 78, result
    assert "started" not in result.stdout
    assert "Traceback" not in result.stderr
    assert all(len(line) < 1000 for line in result.stderr.splitlines())


RESULT_WRITER = """
import os, sys
target = sys.argv[1]
if target == "fifo":
    os.mkfifo(sys.argv[2])
elif target == "big":
    with open(sys.argv[2], "w") as f:
        f.write("x" * (5 * 1024 * 1024))
else:
    os.symlink(target, sys.argv[2])
"""


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "big"])
def test_a_result_file_that_is_not_a_small_regular_file_is_an_error_not_a_hang(
        target: str, tmp_path: object) -> None:
    """The result file is read to report it: the run fails (exit 1, FAILED), promptly."""
    result_path = os.path.join(str(tmp_path), "result.json")
    with FakeCloudReactor() as api:
        api.create_task("result-task")
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        result = run(pwsup_cmd([sys.executable, "-c", RESULT_WRITER, target, result_path],
                               "-n", "result-task", "--result-filename", result_path,
                               "--api-final-update-timeout", "5"), env, timeout=30)
        final = [r.get("status") for r in api.requests if r.method == "PATCH"]
    assert result.returncode == 1, result  # a bad result file fails the run
    assert "cannot read the result file" in result.stderr, result
    assert final[-1:] == ["FAILED"]
    assert "Traceback" not in result.stderr
    if target != "big":  # a FIFO, or a link to /dev/zero, is not removed; a regular file is
        assert os.path.lexists(result_path)
    else:
        assert not os.path.lexists(result_path)


def _result_path(kind: str, tmp_path: Path) -> str:
    """A result file of `kind`: a FIFO, /dev/null's device node (root only), a directory, a
    link to a device, a link to a regular file."""
    path = tmp_path / "result.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("creating a device node needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    elif kind == "directory":
        path.mkdir()
    elif kind == "link-to-device":
        path.symlink_to("/dev/null")
    else:
        (tmp_path / "target.json").write_text('{"n": 1}')
        path.symlink_to(tmp_path / "target.json")
    return str(path)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "link-to-device",
                                  "link-to-regular"])
def test_the_result_file_is_removed_only_if_it_is_a_regular_file(kind: str,
                                                                 tmp_path: Path) -> None:
    """After reading, cleanup removes a regular file only: a device node, a FIFO or a
    directory is reported unreadable and left; a link is read through and left, and so is
    what it points to. (As root, a device node at the result path was deleted.)"""
    path = _result_path(kind, tmp_path)
    before = {entry.name: entry.lstat().st_mode for entry in tmp_path.iterdir()}
    value, error = read_result(Params(result_filename=path))
    if kind == "link-to-regular":
        assert (value, error) == ({"n": 1}, None)
    else:
        assert value is None
        assert error is not None
        assert "not a regular file" in error
    assert {entry.name: entry.lstat().st_mode for entry in tmp_path.iterdir()} == before
    assert os.path.exists("/dev/null")


def test_a_regular_result_file_is_still_removed_after_reading(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"n": 1}')
    assert read_result(Params(result_filename=str(path), cleanup_result_file=False)) == \
        ({"n": 1}, None)
    assert path.exists()
    assert read_result(Params(result_filename=str(path))) == ({"n": 1}, None)
    assert not path.exists()


def _gzip_bomb(size: int) -> bytes:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    return b"".join([*(packer.compress(chunk) for _ in range(size >> 20)), packer.flush()])


AS_LIMIT = 1536 << 20
"""Address space for pwsup and its processes in the test below: ample for pwsup (a few
hundred MiB with thread stacks and malloc arenas), too little to inflate the bomb whole."""
LIMITED = ("import os, resource, sys\n"
           f"resource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT}))\n"
           "os.execv(sys.argv[1], sys.argv[1:])\n")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _gzip_bomb(1 << 30)


@pytest.mark.parametrize("status", [201, 503])
def test_an_api_answer_over_a_mebibyte_is_not_read_whole(status: int, bomb: bytes) -> None:
    """A 1 GiB body (gzip of 1 MiB) to every request: pwsup reads at most 1 MiB of it,
    takes it for an answer it cannot use, and runs the command unreported within its
    creation timeout. Inflating the body whole would not fit in the address space given."""
    with FakeCloudReactor() as api:
        api.create_task("bounded-task")
        api.always("*", Respond(status, body=bomb, headers={
            "Content-Encoding": "gzip", "Content-Type": "application/json"}))
        env = clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": api.api_key})
        command = pwsup_cmd(["sh", "-c", "echo started"], "-n", "bounded-task",
                            "--api-retry-delay", "0.2",
                            "--api-task-execution-creation-error-timeout", "2",
                            "--api-final-update-timeout", "2")
        result = run([sys.executable, "-c", LIMITED, *command], env, timeout=60)
    assert result.returncode == 0, result
    assert "started" in result.stdout
    assert "runs unreported" in result.stderr, result
    assert "Traceback" not in result.stderr
    assert "MemoryError" not in result.stderr
