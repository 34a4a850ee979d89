"""What each attempt cost, and --memory-limit: real commands, real figures.

The commands burn a known amount of CPU (a busy loop until `os.times()` shows 0.3 s of
user time, so a busy machine only makes it take longer, never cost less) and write a known
amount of memory (`b"x" * n`: every page touched, so resident). The figures are checked
against those amounts with generous bounds: at least what was spent (minus a margin for
the kernel's tick accounting), never wildly more.

--memory-limit runs a tree whose child grows past the limit in steps; the attempt ends
with exit 123, and nothing of the tree is left.
"""

from __future__ import annotations

import re
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT, SLACK
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import CHILD_LIFETIME, clean_env, pwsup_cmd, run

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from helpers.runner import Running

MIB = 1024 * 1024
TASK = "usage-task"
SUMMARY = re.compile(
    r"attempt (?P<attempt>\d+): cpu (?P<user>[\d.]+)s user \+ (?P<sys>[\d.]+)s sys, "
    r"peak RSS (?P<rss>[\d.]+) MiB, wall (?P<wall>[\d.]+)s$")

BURN = """
    import os, sys
    start = os.times().user
    while os.times().user - start < 0.3:
        for _ in range(10000):
            pass
    block = b"x" * (int(sys.argv[1]) * 1024 * 1024)
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    """
"""Child: 0.3 s of user CPU, then argv[1] MiB written (resident), then exit argv[2]."""

GROWING_CHILD = f"""
    import os, sys, time
    pid = os.fork()
    if pid == 0:
        blocks = []
        for _ in range(20):  # 200 MiB in 10 MiB steps
            blocks.append(b"x" * (10 * 1024 * 1024))
            time.sleep(0.05)
        time.sleep({CHILD_LIFETIME})
        os._exit(0)
    print("child", pid, flush=True)
    os.waitpid(pid, 0)
    """
"""Command: a child that grows to 200 MiB; the command itself stays small."""


def cmd(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


def figures(line: str) -> dict[str, float]:
    match = SUMMARY.search(line)
    assert match is not None, line
    return {k: float(v) for k, v in match.groupdict().items()}


def summary_line(log_lines: list[str]) -> str:
    (line,) = [line for line in log_lines if "s in total" in line]
    return line


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with FakeCloudReactor() as fake:
        fake.create_task(TASK)
        yield fake


def api_env(api: FakeCloudReactor) -> dict[str, str]:
    return clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                      "PROC_WRAPPER_API_KEY": api.api_key})


def online(*options: str) -> list[str]:
    return ["-n", TASK, "--api-retry-delay", "0.2", "--api-request-timeout", "2",
            "--api-final-update-timeout", "10", "--process-retry-delay", "0.1", *options]


# -- the exit line ---------------------------------------------------------------------------


def test_the_exit_line_says_what_the_attempt_cost(env: dict[str, str]) -> None:
    """0.3 s of user CPU and 64 MiB written: the summary line shows at least that much
    user time and peak RSS, and a wall time covering the CPU time."""
    result = run(pwsup_cmd(cmd(BURN, "64")), env)
    assert result.returncode == 0, result
    cost = figures(summary_line(result.log_lines))
    assert cost["attempt"] == 1
    assert 0.2 <= cost["user"] < 0.3 + SLACK, result
    assert 64 <= cost["rss"] < 64 + 200, result
    assert cost["wall"] >= cost["user"] * 0.9, result


def test_children_the_command_reaped_count_too(env: dict[str, str]) -> None:
    """The command runs the burner as a child and waits for it: wait4's figures include
    it (the kernel adds a reaped child's times to its parent's)."""
    parent = (f"import subprocess, sys; "
              f"subprocess.run([sys.executable, '-c', {textwrap.dedent(BURN)!r}, '48'], "
              f"check=True)")
    result = run(pwsup_cmd([sys.executable, "-c", parent]), env)
    assert result.returncode == 0, result
    cost = figures(summary_line(result.log_lines))
    assert cost["user"] >= 0.2, result
    assert cost["rss"] >= 48, result


ORPHAN = """
    import os, signal, sys
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.write(int(sys.argv[1]), b"ready")
    start = os.times().user
    while os.times().user - start < 0.3:
        for _ in range(10000):
            pass
    """
"""A leftover that ignores SIGTERM, says so on the fd argv[1], burns 0.3 s and exits."""

LEAVES_AN_ORPHAN = f"""
    import os, subprocess, sys
    r, w = os.pipe()
    subprocess.Popen([sys.executable, "-c", {textwrap.dedent(ORPHAN)!r}, str(w)], pass_fds=(w,))
    os.read(r, 5)
    os._exit(0)
    """


def test_orphans_pwsup_reaps_count_for_their_attempt(env: dict[str, str]) -> None:
    """The command exits at once and leaves a child that burns 0.3 s of CPU: re-parented
    to pwsup (a child subreaper) and reaped there once it is done, its time is the
    attempt's."""
    result = run(pwsup_cmd(cmd(LEAVES_AN_ORPHAN),
                           "--process-termination-grace-period", "30"), env)
    assert result.returncode == 0, result
    assert figures(summary_line(result.log_lines))["user"] >= 0.2, result


def test_a_retried_attempt_logs_its_own_cost(env: dict[str, str]) -> None:
    result = run(pwsup_cmd(cmd(BURN, "8", "3"), "-r", "1", "--process-retry-delay", "0"), env)
    assert result.returncode == 3, result
    retry = [line for line in result.log_lines if "retrying in" in line]
    assert len(retry) == 1, result
    assert re.search(r"attempt 1 failed \(exit code 3\) \(cpu [\d.]+s user", retry[0]), retry
    assert figures(summary_line(result.log_lines))["attempt"] == 2


# -- the final report ------------------------------------------------------------------------


def test_the_final_report_carries_the_figures(api: FakeCloudReactor) -> None:
    """other_runtime_metadata.pwsup_usage: the last attempt's figures and the run's
    total, checked by the fake server's protocol checker and stored by it (merged with
    the command's own metadata)."""
    result = run(pwsup_cmd(cmd(BURN, "32", "2"), *online("-r", "1")), api_env(api))
    assert result.returncode == 2, result
    assert api.violations == []
    patches = [r for r in api.requests if r.method == "PATCH"]
    retry_update, final = patches[0], patches[-1]
    assert retry_update.get("status") == "RUNNING"
    assert retry_update.json["other_runtime_metadata"]["pwsup_usage"]["attempt"] == 1
    assert final.get("status") == "FAILED"
    usage = final.json["other_runtime_metadata"]["pwsup_usage"]
    assert usage["attempt"] == 2
    assert usage["user_seconds"] >= 0.2
    assert usage["max_rss_bytes"] >= 32 * MIB
    assert usage["wall_seconds"] >= usage["user_seconds"] * 0.9
    total = usage["all_attempts"]
    assert total["user_seconds"] >= 0.4
    assert total["wall_seconds"] >= usage["wall_seconds"]
    (stored,) = api.executions.values()
    assert stored["other_runtime_metadata"]["pwsup_usage"] == usage
    line = summary_line(result.log_lines)
    assert f"{usage['user_seconds']:.3f}s user" in line, (line, usage)


# -- --memory-limit --------------------------------------------------------------------------


def test_a_tree_over_its_memory_limit_is_ended_with_exit_123(
        start: Callable[..., Running], env: dict[str, str]) -> None:
    """The command stays small; its child grows to 200 MiB under a 100M limit: one
    warning line, TERM to the tree, exit 123, the child gone, and the cost in the exit
    line."""
    pwsup = start(pwsup_cmd(cmd(GROWING_CHILD), "--memory-limit", "100M",
                            "--process-termination-grace-period", "2"), env=env)
    child = procs.Proc.of(int(pwsup.expect("child ").split()[1]))
    assert pwsup.wait(EXIT_TIMEOUT) == 123, pwsup.describe()
    assert not child.alive()
    log = [line for line in pwsup.stderr.splitlines() if line.startswith("PWSUP: ")]
    warnings = [line for line in log if "exceeded its memory limit:" in line]
    assert len(warnings) == 1, pwsup.describe()
    assert re.search(r"[\d.]+ MiB resident in \d+ process\(es\), limit 100\.0 MiB", warnings[0])
    line = summary_line(log)
    assert "exceeded its memory limit of 100.0 MiB: exit code 123" in line, line
    assert figures(line)["rss"] > 50, line


def test_a_tree_within_its_memory_limit_runs_to_the_end(env: dict[str, str]) -> None:
    result = run(pwsup_cmd(cmd(BURN, "32"), "--memory-limit", "512M",
                           "--memory-check-interval", "0.05"), env)
    assert result.returncode == 0, result
    assert not [line for line in result.log_lines if "memory limit" in line], result


def test_a_memory_limit_failure_is_retried_and_reported_failed(api: FakeCloudReactor) -> None:
    """Exceeding the limit is a failed attempt: retried under -r; the last one makes the
    run FAILED with a message naming the figure and the limit, exit 123."""
    result = run(pwsup_cmd(cmd(GROWING_CHILD), *online(
        "-r", "1", "--memory-limit", "100M", "--process-termination-grace-period", "2")),
        api_env(api), timeout=EXIT_TIMEOUT + EVENT_TIMEOUT)
    assert result.returncode == 123, result
    assert api.violations == []
    final = [r for r in api.requests if r.method == "PATCH"][-1]
    assert final.get("status") == "FAILED"
    assert final.get("failed_attempts") == 2
    message = final.get("last_status_message")
    assert re.fullmatch(r"memory limit exceeded: attempt 2 used [\d.]+ MiB resident, over "
                        r"the limit of 100\.0 MiB", message), message
    exceeded = final.json["other_runtime_metadata"]["pwsup_usage"]["memory_limit_exceeded"]
    assert exceeded["limit_bytes"] == 100 * MIB
    assert exceeded["rss_bytes"] > 100 * MIB
    (stored,) = api.executions.values()
    assert stored["status"] == "FAILED"
    assert stored["last_status_message"] == message


@pytest.mark.parametrize("value", ["12X", "1K", "-2", "0.5M", "2000T", "nan", "1e9"])
def test_a_bad_memory_limit_is_exit_78_naming_the_option(value: str,
                                                         env: dict[str, str]) -> None:
    result = run(pwsup_cmd(["sh", "-c", "echo started"], "--memory-limit", value), env)
    assert result.returncode == 78, result
    assert "started" not in result.stdout
    assert any("--memory-limit" in line for line in result.log_lines), result
