"""pwsup's exit code: the command's own, 128+N for a signal, 124/126/127, and 78 for bad
configuration (with nothing started)."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from helpers.bounds import SLACK
from helpers.runner import PWSUP, pwsup_cmd, python_cmd, run

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.slow
def test_every_exit_code_from_0_to_255_passes_through(env: dict[str, str]) -> None:
    """For every N in 0..255, a command that exits N makes pwsup exit N."""
    # 256 pwsup runs cost 15-50 s on two shared cores (each start of pwsup takes ~0.1 s of
    # CPU): hence four at a time, and the `slow` mark.
    def run_one(code: int) -> tuple[int, int]:
        # `sh -c 'exit N'`: the cheapest command there is (the same in every POSIX shell);
        # what is tested is pwsup passing N on, not the command's start-up.
        result = run(pwsup_cmd(["sh", "-c", f"exit {code}"]), env, timeout=60)
        return code, result.returncode

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(run_one, range(256)))
    wrong = [(code, got) for code, got in outcomes if code != got]
    assert not wrong, f"(expected, got) for the codes that did not pass through: {wrong}"


@pytest.mark.parametrize(("signum", "expected"), [
    (signal.SIGTERM, 143), (signal.SIGKILL, 137), (signal.SIGINT, 130), (signal.SIGHUP, 129),
    (signal.SIGUSR1, 138), (signal.SIGSEGV, 139),
], ids=lambda v: v.name if isinstance(v, signal.Signals) else str(v))
def test_death_by_signal_exits_128_plus_the_signal_number(
        env: dict[str, str], signum: int, expected: int) -> None:
    """A command killed by signal N makes pwsup exit 128+N, like a shell reports it."""
    code = f"""
        import os, resource, signal
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if {int(signum)} != signal.SIGKILL:
            signal.signal({int(signum)}, signal.SIG_DFL)
        os.kill(os.getpid(), {int(signum)})
        """
    result = run(pwsup_cmd(python_cmd(code)), env)
    assert result.returncode == expected, result


def test_command_not_found_exits_127(env: dict[str, str], tmp_path: Path) -> None:
    """A command that does not exist (by path or on PATH) makes pwsup exit 127."""
    for command in (str(tmp_path / "no-such-program"), "pwsup-test-no-such-program-on-path"):
        result = run(pwsup_cmd([command, "arg"]), env)
        assert result.returncode == 127, result
        assert result.stdout == "", result


@pytest.mark.parametrize("kind", ["non-executable file", "directory"])
def test_command_that_cannot_be_executed_exits_126(env: dict[str, str], tmp_path: Path,
                                                   kind: str) -> None:
    """A file without execute permission, or a directory, makes pwsup exit 126."""
    target = tmp_path / "target"
    if kind == "directory":
        target.mkdir()
    else:
        target.write_text("#!/bin/sh\necho should not run\n")
        target.chmod(0o644)
    result = run(pwsup_cmd([str(target)]), env)
    assert result.returncode == 126, result
    assert result.stdout == "", result


def test_time_limit_on_the_last_attempt_exits_124(env: dict[str, str]) -> None:
    """An attempt that hits `-t` is terminated and pwsup exits 124."""
    code = "import time; time.sleep(30)"
    limit = 0.5
    result = run(pwsup_cmd(python_cmd(code), "-t", str(limit)), env)
    assert result.returncode == 124, result
    # The command dies of the limit's SIGTERM at once: the limit, far below its own 30 s.
    assert result.elapsed < limit + SLACK, result


def test_time_limit_exit_code_is_124_even_if_the_command_exits_0_on_sigterm(
        env: dict[str, str]) -> None:
    """A timed-out attempt is a time-out (124), whatever the command exited with."""
    code = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        time.sleep(30)
        """
    result = run(pwsup_cmd(python_cmd(code), "-t", "0.5"), env)
    assert result.returncode == 124, result


CONFIG_ERRORS = {
    "bad timeout": ["-t", "abc"],
    "bad retries": ["-r", "xyz"],
    "fractional retries": ["-r", "1.5"],
    "negative retry delay": ["--process-retry-delay", "-5"],
    "bad retry delay": ["--process-retry-delay", "soon"],
    "bad grace period": ["--process-termination-grace-period", "x"],
    "unknown option": ["--bogus"],
    "option without its value": ["-t"],
    "work dir missing": ["--work-dir", "/nonexistent/pwsup-test-dir"],
    "offline and prevent-offline": ["--offline-mode", "--prevent-offline-execution"],
}


@pytest.mark.parametrize("options", list(CONFIG_ERRORS.values()), ids=list(CONFIG_ERRORS))
def test_configuration_error_exits_78_and_starts_nothing(
        env: dict[str, str], tmp_path: Path, options: list[str]) -> None:
    """Any bad option makes pwsup exit 78 without running the command at all."""
    marker = tmp_path / "started"
    result = run(pwsup_cmd(["touch", str(marker)], *options), env)
    assert result.returncode == 78, result
    assert not marker.exists(), f"the command ran despite the configuration error\n{result}"
    assert result.stdout == "", result
    assert any("error" in line.lower() for line in result.log_lines), result


def test_command_given_twice_is_a_configuration_error(env: dict[str, str],
                                                      tmp_path: Path) -> None:
    """A `-c` string and a command after `--` contradict each other: 78, nothing runs."""
    first, second = tmp_path / "first", tmp_path / "second"
    result = run([PWSUP, "-c", f"touch {first}", "--", "touch", str(second)], env)
    assert result.returncode == 78, result
    assert not first.exists(), result
    assert not second.exists(), result


@pytest.mark.parametrize("options", [[], ["-t", "5"], ["--"]], ids=["nothing", "only-options",
                                                                   "only-dashes"])
def test_missing_command_is_a_configuration_error(env: dict[str, str],
                                                  options: list[str]) -> None:
    """pwsup without a command exits 78."""
    result = run([PWSUP, *options], env)
    assert result.returncode == 78, result


ENV_ERRORS = {
    "bad timeout": {"PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS": "abc"},
    "bad retries": {"PROC_WRAPPER_TASK_MAX_RETRIES": "many"},
    "two spellings disagree": {"PROC_WRAPPER_TASK_MAX_RETRIES": "1",
                               "PROC_WRAPPER_PROCESS_MAX_RETRIES": "2"},
}


@pytest.mark.parametrize("variables", list(ENV_ERRORS.values()), ids=list(ENV_ERRORS))
def test_bad_environment_variable_exits_78_and_starts_nothing(
        env: dict[str, str], tmp_path: Path, variables: dict[str, str]) -> None:
    """A bad value (or two spellings that disagree) in the environment is a config error."""
    marker = tmp_path / "started"
    result = run(pwsup_cmd(["touch", str(marker)]), {**env, **variables})
    assert result.returncode == 78, result
    assert not marker.exists(), result


def test_all_configuration_errors_are_reported_together(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    """`-t abc -r xyz --bogus` reports all three problems in one run, then exits 78."""
    marker = tmp_path / "started"
    result = run(pwsup_cmd(["touch", str(marker)], "-t", "abc", "-r", "xyz", "--bogus"), env)
    assert result.returncode == 78, result
    assert not marker.exists(), result
    errors = "\n".join(result.log_lines)
    for mentioned in ("abc", "xyz", "--bogus"):
        assert mentioned in errors, f"{mentioned!r} is not reported\n{result}"
    for option in ("--process-timeout", "--process-max-retries"):
        assert option in errors, f"the error does not name {option}\n{result}"


def test_configuration_error_from_the_environment_is_listed_with_the_cli_ones(
        env: dict[str, str], tmp_path: Path) -> None:
    """Errors from the environment and from the command line are reported together."""
    marker = tmp_path / "started"
    env["PROC_WRAPPER_PROCESS_RETRY_DELAY_SECONDS"] = "later"
    result = run(pwsup_cmd(["touch", str(marker)], "-t", "abc"), env)
    assert result.returncode == 78, result
    assert not marker.exists(), result
    errors = "\n".join(result.log_lines)
    assert "PROC_WRAPPER_PROCESS_RETRY_DELAY_SECONDS" in errors, result
    assert "abc" in errors, result

