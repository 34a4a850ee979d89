"""pwsup's own processes: the parent's and the reporter's titles, who is whose child, and
what the parent imports."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import PWSUP, PYTHON, pwsup_cmd, python_cmd, run

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from helpers.runner import Running

WAIT_FOR_STDIN = """
import os, sys
print("ready", os.getpid(), flush=True)
sys.stdin.read()
"""
"""Child: prints `ready <pid>`, then runs until its stdin is closed."""

SECRET = "--password=hunter2222"


def find_reporter(pwsup_pid: int, command_pid: int, timeout: float = SLACK) -> procs.Proc:
    """The reporter: the child of pwsup that is not the command, once its title is set."""
    found: list[procs.Proc] = []

    def titled_reporter() -> bool:
        for pid in procs.children(pwsup_pid):
            title = procs.cmdline(pid) or ""
            if pid != command_pid and title.startswith("pwsup reporter:"):
                found.append(procs.Proc.of(pid))
                return True
        return False

    procs.wait_until(titled_reporter, timeout, "pwsup's reporter process")
    return found[0]


@pytest.mark.parametrize("form", ["argv", "command-line"])
@pytest.mark.parametrize("task_name", [None, "nightly-job"])
def test_titles_name_the_task_or_program_and_never_the_arguments(
        start: Callable[..., Running], tmp_path: Path, form: str, task_name: str | None) -> None:
    """Parent: `pwsup: <name>`, reporter: `pwsup reporter: <name>`; no argument in either."""
    script = tmp_path / "wait_for_stdin.py"
    script.write_text(WAIT_FOR_STDIN)
    options = ["-n", task_name] if task_name else []
    if form == "argv":
        argv = [PWSUP, *options, "--", PYTHON, str(script), SECRET]
    else:
        argv = [PWSUP, *options, "-c", f"{PYTHON} {script} {SECRET}"]
    pwsup = start(argv, stdin=subprocess.PIPE)
    command = pwsup.expect_ready()
    reporter = find_reporter(pwsup.pid, command.pid)
    name = task_name or os.path.basename(PYTHON)
    parent_title = procs.cmdline(pwsup.pid)
    reporter_title = reporter.cmdline()
    command_line = command.cmdline() or ""
    pwsup.close_stdin()
    assert pwsup.wait() == 0, pwsup.describe()
    assert parent_title == f"pwsup: {name}"
    assert reporter_title == f"pwsup reporter: {name}"
    assert SECRET in command_line, "the command itself does get the argument"


def test_command_and_reporter_are_children_of_the_pwsup_process(
        start: Callable[..., Running]) -> None:
    """The process the caller started runs the command and the reporter as its children."""
    pwsup = start(pwsup_cmd(python_cmd(WAIT_FOR_STDIN)), stdin=subprocess.PIPE)
    command = pwsup.expect_ready()
    reporter = find_reporter(pwsup.pid, command.pid)
    assert sorted(procs.children(pwsup.pid)) == sorted([command.pid, reporter.pid])
    assert procs.pgid_of(reporter.pid) != command.pid, "the reporter is not in the command's group"
    pwsup.close_stdin()
    assert pwsup.wait() == 0, pwsup.describe()
    assert not reporter.alive(), "the reporter ends with pwsup"


def test_parent_never_imports_http_or_aws_code(env: dict[str, str]) -> None:
    """A whole offline run in one process leaves no HTTP/AWS module in sys.modules."""
    code = """
        from pwsup.cli import run
        import os, sys
        code = run(["--", sys.executable, "-c", "pass"], dict(os.environ))
        bad = [m for m in ("requests", "urllib3", "http.client", "boto3", "jsonpath_ng")
               if m in sys.modules]
        print(code, bad)
        """
    result = run(python_cmd(code), env)
    assert result.returncode == 0, result
    assert result.stdout.splitlines()[-1] == "0 []", result


TITLE_OUT_OF_DESCRIPTORS = """
    import errno, os, sys
    from pwsup import cli

    class OutOfDescriptors:  # what importing a module meets at RLIMIT_NOFILE
        def find_spec(self, name, path=None, target=None):
            if name == "pwsup.util.title":
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
            return None

    sys.meta_path.insert(0, OutOfDescriptors())
    cli.main(["--", "sh", "-c", "echo ran; exit 3"])
    """


def test_a_process_title_that_cannot_be_set_does_not_stop_the_command(
        env: dict[str, str]) -> None:
    """Offline the title is set while the command already runs: out of descriptors then,
    pwsup goes on without a title instead of stopping a started command (exit 71)."""
    result = run(python_cmd(TITLE_OUT_OF_DESCRIPTORS), env)
    assert result.returncode == 3, result
    assert result.stdout == "ran\n", result
    assert "ERROR" not in result.stderr, result
