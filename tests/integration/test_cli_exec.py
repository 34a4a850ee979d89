"""How pwsup runs its command: argv verbatim, `-c` strings, inherited stdio, log lines."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.runner import PROC_WRAPPER, PWSUP, PYTHON, clean_env, pwsup_cmd, python_cmd, run

PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


@pytest.mark.parametrize("program", [PWSUP, PROC_WRAPPER], ids=["pwsup", "proc_wrapper"])
def test_echo_prints_option_like_argument_verbatim(program: str, env: dict[str, str]) -> None:
    """`pwsup -- echo --x=1` runs echo itself, which prints `--x=1` (both console scripts)."""
    result = run(pwsup_cmd(["echo", "--x=1"], program=program), env)
    assert result.returncode == 0, result
    assert result.stdout == "--x=1\n", result


def test_sh_c_script_runs_with_its_quoting_and_exit_code(env: dict[str, str]) -> None:
    """`pwsup -- sh -c 'echo "a b"; exit 7'` prints `a b` and exits 7."""
    result = run(pwsup_cmd(["sh", "-c", 'echo "a b"; exit 7']), env)
    assert result.stdout == "a b\n", result
    assert result.returncode == 7, result


def test_arguments_with_shell_characters_reach_the_command_unchanged(
        env: dict[str, str]) -> None:
    """Arguments are exec'd verbatim: no shell expands, splits or drops any of them."""
    args = ["--x=1", "a b", "$HOME", "`id`", ";", "|", "*", "'", '"', "", "-c", "--", "é\tü"]
    result = run(pwsup_cmd(python_cmd(PRINT_ARGV, *args)), env)
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == args, result


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                        max_size=12), max_size=6))
def test_any_argument_list_is_passed_through_exactly(args: list[str]) -> None:
    """Property: whatever the argument list, the command receives exactly that list."""
    result = run(pwsup_cmd(python_cmd(PRINT_ARGV, *args)), clean_env())
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == args, result


def test_command_line_with_shell_characters_runs_through_sh(env: dict[str, str]) -> None:
    """`-c` with a pipe, a variable and `exit` is run by /bin/sh, with sh's exit code."""
    env["GREETING"] = "hello world"
    result = run([PWSUP, "-c", 'echo "$GREETING" | tr a-z A-Z; exit 5'], env)
    assert result.stdout == "HELLO WORLD\n", result
    assert result.returncode == 5, result


def test_long_command_line_option_is_the_same_as_c(env: dict[str, str]) -> None:
    """`--command-line` is the long spelling of `-c`."""
    result = run([PWSUP, "--command-line", "echo one && echo two"], env)
    assert (result.returncode, result.stdout) == (0, "one\ntwo\n"), result


def test_plain_command_line_is_split_into_arguments(env: dict[str, str],
                                                    tmp_path: object) -> None:
    """A `-c` string without shell characters is split into an argv like a shell would."""
    script = os.path.join(str(tmp_path), "print_argv.py")
    with open(script, "w") as f:
        f.write(PRINT_ARGV + "\n")
    result = run([PWSUP, "-c", f"{PYTHON} {script} first second  third"], env)
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == ["first", "second", "third"], result


def test_stdin_is_passed_through_to_the_command(env: dict[str, str]) -> None:
    """The command reads pwsup's stdin."""
    code = "import sys; data = sys.stdin.read(); print(len(data)); print(data.upper(), end='')"
    result = run(pwsup_cmd(python_cmd(code)), env, input="hello\nworld\n")
    assert result.returncode == 0, result
    assert result.stdout == "12\nHELLO\nWORLD\n", result


def test_stdout_and_stderr_are_inherited_and_log_lines_are_prefixed(
        env: dict[str, str]) -> None:
    """The command's stdout/stderr are pwsup's; pwsup's own lines go to stderr as `PWSUP: `."""
    code = """
        import sys
        print("to stdout", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        """
    result = run(pwsup_cmd(python_cmd(code)), env)
    assert result.returncode == 0, result
    assert result.stdout == "to stdout\n", result
    assert result.command_stderr == ["to stderr"], result
    assert result.log_lines, f"pwsup logged nothing at all\n{result}"
    assert not any("PWSUP" in line for line in result.stdout.splitlines()), result


def test_command_runs_in_its_own_process_group(env: dict[str, str]) -> None:
    """The command is the leader of a new process group, not in pwsup's group."""
    code = """
        import os
        pgid, pwsup_pgid = os.getpgrp(), os.getpgid(os.getppid())
        print(os.getpid(), pgid, pwsup_pgid)
        """
    result = run(pwsup_cmd(python_cmd(code)), env)
    assert result.returncode == 0, result
    pid, pgid, pwsup_pgid = map(int, result.stdout.split())
    assert pgid == pid, result
    assert pwsup_pgid == os.getpgrp(), "pwsup itself stays in the group it was started in"
    assert pwsup_pgid != pgid, result



LIST_FDS = """
import json, os
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        fds.append((int(name), os.readlink(f"/proc/self/fd/{name}")))
    except OSError:
        pass  # the directory listing's own fd, closed by now
print(json.dumps(sorted(fds)))
raise SystemExit(int(os.environ.get("EXIT_CODE", "0")))
"""


@pytest.mark.parametrize("attempts", [1, 2])
def test_command_inherits_no_file_descriptor_of_pwsup(env: dict[str, str],
                                                      attempts: int) -> None:
    """The command has only fds 0-2: no pwsup pipe or pidfd leaks into it, also on a retry."""
    env["EXIT_CODE"] = "1" if attempts == 2 else "0"
    result = run(pwsup_cmd(python_cmd(LIST_FDS), "-r", str(attempts - 1),
                           "--process-retry-delay", "0.1"), env)
    lines = result.stdout.splitlines()
    assert len(lines) == attempts, result
    for line in lines:
        assert [fd for fd, _ in json.loads(line)] == [0, 1, 2], result
