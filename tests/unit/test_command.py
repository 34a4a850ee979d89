"""Turning the configured command into the argv that is exec'd."""

from __future__ import annotations

import pytest

from pwsup.config.command import CommandError, needs_shell, resolve, strip_shell_wrapping


def test_argv_is_kept_verbatim_even_with_shell_characters() -> None:
    """Arguments are never re-interpreted by a shell (upstream ran sh -c argv0 argv1...)."""
    assert resolve(("echo", "a=b", "$HOME", "x;y"), None) == ["echo", "a=b", "$HOME", "x;y"]


def test_relative_sh_c_is_not_stripped() -> None:
    """`sh -c script` (relative) runs as given."""
    argv = ["sh", "-c", 'echo "a b"; exit 7']
    assert resolve(tuple(argv), None) == argv


def test_absolute_shell_wrapping_of_a_simple_command_is_stripped() -> None:
    """Docker's shell-form `/bin/sh -c 'python app.py'` runs python directly."""
    assert resolve(("/bin/sh", "-c", "python app.py"), None) == ["python", "app.py"]
    assert strip_shell_wrapping(["/bin/bash", "-c", "/bin/sh -c true"]) == ["true"]


def test_wrapping_of_a_real_script_is_kept_with_its_own_shell() -> None:
    """A script that needs a shell keeps its shell (bash stays bash)."""
    argv = ["/bin/bash", "-c", "echo $((1+1)) && true"]
    assert resolve(tuple(argv), None) == argv


def test_strip_can_be_disabled() -> None:
    """--no-strip-shell-wrapping keeps the wrapper."""
    argv = ("/bin/sh", "-c", "python app.py")
    assert resolve(argv, None, strip_wrapping=False) == list(argv)


def test_command_line_string_uses_a_shell_only_when_needed() -> None:
    """A string runs under /bin/sh only when it has shell syntax."""
    assert resolve((), "python job.py --n 3") == ["python", "job.py", "--n", "3"]
    assert resolve((), "echo $HOME | tr a-z A-Z") == ["/bin/sh", "-c", "echo $HOME | tr a-z A-Z"]


def test_shell_mode_enable_and_disable() -> None:
    """enable always uses /bin/sh; disable splits with shell quoting rules."""
    assert resolve(("echo", "hi"), None, shell_mode="enable") == ["/bin/sh", "-c", "echo hi"]
    assert resolve((), 'echo "a b"', shell_mode="disable") == ["echo", "a b"]


def test_bad_quoting_and_empty_commands_are_errors() -> None:
    """Unsplittable or empty commands are configuration errors."""
    with pytest.raises(CommandError, match="cannot split"):
        resolve((), 'echo "unterminated', shell_mode="disable")
    with pytest.raises(CommandError, match="empty"):
        resolve((), "   ", shell_mode="disable")


@pytest.mark.parametrize(("script", "expected"), [
    ("python app.py", False), ("./run.sh --x 1", False), ("a=b", True), ("x; y", True),
    ("'q'", True), ("a\tb", True),
])
def test_needs_shell(script: str, expected: bool) -> None:
    """Only letters, digits and `_-/. ` are plain."""
    assert needs_shell(script) is expected


def test_string_form_wrapping_is_stripped_too() -> None:
    """`-c "/bin/sh -c 'python app.py'"` runs python directly."""
    assert resolve((), "/bin/sh -c 'python app.py'") == ["python", "app.py"]
    wrapped = "/bin/bash -c 'echo $((1+1))'"
    assert resolve((), wrapped) == ["/bin/sh", "-c", wrapped]
