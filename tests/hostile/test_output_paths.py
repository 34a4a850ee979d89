"""pwsup writes and removes only regular files: never a device node, a FIFO or a link.

The class: a path pwsup writes to (`--env-output-filename`, `--config-output-filename`,
`--input-filename` with an input value) that already names something other than a regular
file — a character device (`/dev/full` as root), a FIFO, a directory, a symbolic link — and
the files pwsup would remove at exit (output files, the input file it wrote) replaced
meanwhile by the command with such a thing. Writing would replace it with a regular file,
and the cleanup at exit delete that: as root, `--env-output-filename /dev/full` deleted
/dev/full. Instead such a path is a configuration error at start (one line naming the
option and what the path is, exit 78, nothing started, nothing written or removed), and a
cleanup unlinks a path only if it is a regular file at that moment (and, for the input
file, the very file pwsup wrote). An existing regular file is replaced and removed as
before.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import TYPE_CHECKING

import pytest

from helpers.runner import clean_env, pwsup_cmd, run
from pwsup.util import files

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.hostile

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a FIFO"


def _device(path: Path) -> str:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    return "a character device"


def _directory(path: Path) -> str:
    path.mkdir()
    return "a directory"


def _link_to_fifo(path: Path) -> str:
    os.mkfifo(path.with_name("fifo-target"))
    path.symlink_to(path.with_name("fifo-target"))
    return "a symbolic link"


def _link_to_regular(path: Path) -> str:
    path.with_name("regular-target").write_text("kept\n")
    path.symlink_to(path.with_name("regular-target"))
    return "a symbolic link"


MAKERS: dict[str, Callable[[Path], str]] = {
    "fifo": _fifo, "device": _device, "directory": _directory,
    "link-to-fifo": _link_to_fifo, "link-to-regular": _link_to_regular}
KINDS = [pytest.param(name, marks=AS_ROOT) if name == "device" else name for name in MAKERS]


def _snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry of `directory`, by name: (mode, inode, size) as lstat sees it."""
    found = {}
    for entry in directory.iterdir():
        info = entry.lstat()
        found[entry.name] = (info.st_mode, info.st_ino, info.st_size)
    return found


OPTIONS = {
    "--env-output-filename": ("--env", "PLAIN:A=1"),
    "--config-output-filename": ("--env", "PLAIN:A=1"),
    "--input-filename": ("--input-value", "hello"),
}


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("kind", KINDS)
def test_a_path_to_write_that_is_not_a_regular_file_is_a_configuration_error(
        option: str, kind: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    what = MAKERS[kind](target)
    before = _snapshot(tmp_path)
    result = run(pwsup_cmd(["sh", "-c", "echo started"], *OPTIONS[option], option,
                           str(target)), clean_env(), timeout=30)
    assert result.returncode == 78, result
    assert "started" not in result.stdout
    (line,) = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert f"{option}: {str(target)!r} is {what}, not a regular file" in line, result
    assert "Traceback" not in result.stderr
    assert _snapshot(tmp_path) == before  # nothing written, replaced or removed


def test_the_default_name_of_an_output_format_is_checked_too(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "env.json")
    result = run(pwsup_cmd(["sh", "-c", "echo started"], "--env", "PLAIN:A=1",
                           "--env-output-format", "json", "--work-dir", str(tmp_path)),
                 clean_env(), timeout=30, cwd=str(tmp_path))
    assert result.returncode == 78, result
    assert "--env-output-filename: 'env.json' is a FIFO" in result.stderr, result
    assert stat.S_ISFIFO((tmp_path / "env.json").lstat().st_mode)


def test_an_input_file_pwsup_does_not_write_may_be_anything(tmp_path: Path) -> None:
    """Without an input value the input file is the command's to read: a FIFO is fine."""
    fifo = tmp_path / "input"
    os.mkfifo(fifo)
    result = run(pwsup_cmd(["sh", "-c", "echo started"], "--input-filename", str(fifo)),
                 clean_env(), timeout=30)
    assert result.returncode == 0, result
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_existing_regular_files_are_still_replaced_and_removed_at_exit(
        tmp_path: Path) -> None:
    env_out, config_out, input_file = (tmp_path / n for n in ("out.env", "out.json", "in"))
    for path in (env_out, config_out, input_file):
        path.write_text("stale\n")
        path.chmod(0o644)
    show = (f"stat -c %a {env_out} {config_out} {input_file}; cat {input_file}; echo; "
            f"grep -c '^A=' {env_out}")
    result = run(pwsup_cmd(["sh", "-c", show], "--env", "PLAIN:A=1",
                           "--env-output-filename", str(env_out),
                           "--config-output-filename", str(config_out),
                           "--input-value", "hello", "--input-filename", str(input_file)),
                 clean_env(), timeout=30)
    assert result.returncode == 0, result
    assert result.stdout.split() == ["600", "600", "600", "hello", "1"], result
    assert list(tmp_path.iterdir()) == []


SWAP = """
import os, stat, sys
from pathlib import Path
for name in sys.argv[2:]:
    path = Path(name)
    path.unlink()
    if sys.argv[1] == "fifo":
        os.mkfifo(path)
    elif sys.argv[1] == "device":
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    elif sys.argv[1] == "directory":
        path.mkdir()
    else:
        target = path.with_name(path.name + "-target")
        if sys.argv[1] == "link-to-fifo":
            os.mkfifo(target)
        else:
            target.write_text("kept")
        path.symlink_to(target)
"""
"""A command that replaces each file named after the kind with a thing of that kind."""


@pytest.mark.parametrize("kind", KINDS)
def test_a_written_file_the_command_replaced_is_not_removed_at_exit(
        kind: str, tmp_path: Path) -> None:
    """The command swaps the output file and the input file pwsup wrote for something else:
    at exit pwsup removes neither (nor what a link points to)."""
    env_out, input_file = tmp_path / "out.env", tmp_path / "in"
    result = run(pwsup_cmd([sys.executable, "-c", SWAP, kind, str(env_out), str(input_file)],
                           "--env", "PLAIN:A=1", "--env-output-filename", str(env_out),
                           "--input-value", "hello", "--input-filename", str(input_file)),
                 clean_env(), timeout=30)
    assert result.returncode == 0, result
    left = _snapshot(tmp_path)
    assert {"out.env", "in"} <= set(left), result
    for name in ("out.env", "in"):
        assert not stat.S_ISREG(left[name][0]), name
    if kind.startswith("link"):
        assert {"out.env-target", "in-target"} <= set(left)  # what the links point to


def test_an_input_file_the_command_replaced_by_another_regular_file_stays(
        tmp_path: Path) -> None:
    """By default pwsup removes the input file only if it is still the one it wrote (the
    same inode; here the command renames its own file over it)."""
    input_file = tmp_path / "in"
    script = f"echo mine > {input_file}.new; mv {input_file}.new {input_file}"
    result = run(pwsup_cmd(["sh", "-c", script], "--input-value", "hello",
                           "--input-filename", str(input_file)), clean_env(), timeout=30)
    assert result.returncode == 0, result
    assert input_file.read_text() == "mine\n"
    asked = run(pwsup_cmd(["sh", "-c", script], "--input-value", "hello",
                          "--input-filename", str(input_file), "--cleanup-input-file"),
                clean_env(), timeout=30)
    assert asked.returncode == 0, asked
    assert not input_file.exists()  # --cleanup-input-file: whatever regular file is there


@pytest.mark.parametrize("kind", KINDS)
def test_write_private_refuses_a_path_that_is_not_a_regular_file(
        kind: str, tmp_path: Path) -> None:
    """The last line of defence, when the path changed after the check at start."""
    target = tmp_path / "target"
    what = MAKERS[kind](target)
    before = _snapshot(tmp_path)
    with pytest.raises(files.NotRegular) as info:
        files.write_private(str(target), "secret")
    assert info.value.strerror == f"it is {what}, not a regular file"
    assert _snapshot(tmp_path) == before  # no temporary file left either


@pytest.mark.parametrize("kind", KINDS)
def test_remove_quietly_leaves_anything_but_a_regular_file(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    MAKERS[kind](target)
    before = _snapshot(tmp_path)
    files.remove_quietly(str(target))
    assert _snapshot(tmp_path) == before


def test_remove_quietly_removes_a_regular_file_only_if_it_is_the_one_written(
        tmp_path: Path) -> None:
    target = str(tmp_path / "target")
    written = files.write_private(target, "one")
    files.write_private(target, "two")  # a new file in its place
    files.remove_quietly(target, written)
    assert os.path.exists(target)
    files.remove_quietly(target, files.identity(target))
    assert not os.path.exists(target)


@pytest.mark.parametrize("option", ["env_output_filename", "config_output_filename"])
def test_embedded_mode_refuses_such_an_output_path_too(option: str, tmp_path: Path) -> None:
    from helpers.embedded import bare_env
    from pwsup.compat import ConfigurationError, ProcWrapper, ProcWrapperParams

    target = tmp_path / "target"
    os.mkfifo(target)
    params = ProcWrapperParams(env=bare_env())
    setattr(params, option, str(target))
    with pytest.raises(ConfigurationError) as info:
        ProcWrapper(params=params, env_override=bare_env())
    (error,) = info.value.errors
    assert f"{str(target)!r} is a FIFO, not a regular file" in error
    assert stat.S_ISFIFO(target.lstat().st_mode)


def test_embedded_mode_removes_only_regular_files_after_a_call(tmp_path: Path) -> None:
    """The function swaps its output file for a FIFO; --cleanup-input-file meets a FIFO."""
    from helpers.embedded import bare_env
    from pwsup.compat import ProcWrapper, ProcWrapperParams

    out, input_fifo = tmp_path / "out.json", tmp_path / "in.json"
    os.mkfifo(input_fifo)
    params = ProcWrapperParams(env=bare_env())
    params.config_output_filename = str(out)
    params.input_filename = str(input_fifo)
    params.cleanup_input_file = True

    def swap(wrapper: object, data: object, config: object) -> str:
        out.unlink()
        os.mkfifo(out)
        return "done"

    wrapper = ProcWrapper(params=params, env_override=bare_env())
    assert wrapper.managed_call(swap, data={"given": True}) == "done"
    assert stat.S_ISFIFO(out.lstat().st_mode)
    assert stat.S_ISFIFO(input_fifo.lstat().st_mode)
