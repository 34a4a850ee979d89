"""The one-file build (scripts/build_onefile.py) behaves like the installed `pwsup`.

The artifact is taken from $PWSUP_ONEFILE, else the newest executable `dist/pwsup*`;
without one the tests are skipped (build it with `python3 scripts/build_onefile.py`). It
is run as an executable, with its own interpreter line, through a few conformance checks:
exit codes, SIGTERM forwarding, argv passed verbatim, stdin passed through. Its unpacked
copy goes to a temporary SHIV_ROOT, never to the user's ~/.shiv.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from helpers.runner import Running, clean_env, python_cmd, run

ROOT = Path(__file__).resolve().parents[2]
FIRST_START = 60.0
"""Seconds the first start may take: it unpacks the archive (and compiles it) once."""


def _find_artifact() -> tuple[Path | None, str]:
    given = os.environ.get("PWSUP_ONEFILE")
    if given:
        path = Path(given)
        if not path.is_file():
            return None, f"PWSUP_ONEFILE={given} is not a file"
        return path, ""
    # Executables only: dist/ may also hold a wheel or an sdist of pwsup.
    found = sorted((p for p in (ROOT / "dist").glob("pwsup*")
                    if p.is_file() and os.access(p, os.X_OK)),
                   key=lambda p: p.stat().st_mtime)
    if not found:
        return None, ("no one-file build: set PWSUP_ONEFILE or run "
                      "`python3 scripts/build_onefile.py` (writes dist/pwsup-*.pyz)")
    return found[-1], ""


@pytest.fixture(scope="module")
def artifact() -> Path:
    path, reason = _find_artifact()
    if path is None:
        pytest.skip(reason)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not executable")
    return path


@pytest.fixture(scope="module")
def onefile_env(tmp_path_factory: pytest.TempPathFactory, artifact: Path) -> dict[str, str]:
    """A clean environment with a private SHIV_ROOT, unpacked once for the module."""
    env = clean_env({"SHIV_ROOT": str(tmp_path_factory.mktemp("shiv-root"))})
    first = run([str(artifact), "--version"], env, timeout=FIRST_START)
    assert first.returncode == 0, str(first)
    assert first.stdout.startswith("pwsup "), str(first)
    return env


@pytest.mark.parametrize(("command", "expected"), [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "kill -KILL $$"], 137),
    (["pwsup-test-no-such-command"], 127),
], ids=["exit-0", "exit-3", "sigkill-137", "not-found-127"])
def test_exit_codes(artifact: Path, onefile_env: dict[str, str], command: list[str],
                    expected: int) -> None:
    result = run([str(artifact), "--", *command], onefile_env)
    assert result.returncode == expected, str(result)


def test_bad_configuration_exits_78(artifact: Path, onefile_env: dict[str, str]) -> None:
    result = run([str(artifact), "--process-timeout", "soon", "--", "true"], onefile_env)
    assert result.returncode == 78, str(result)


def test_argv_is_passed_verbatim(artifact: Path, onefile_env: dict[str, str]) -> None:
    result = run([str(artifact), "--", "echo", "--x=1", "a b", "$HOME"], onefile_env)
    assert result.returncode == 0, str(result)
    assert result.stdout == "--x=1 a b $HOME\n", str(result)


def test_stdin_is_passed_through(artifact: Path, onefile_env: dict[str, str]) -> None:
    result = run([str(artifact), "--", "cat"], onefile_env, input="line 1\nline 2\n")
    assert result.returncode == 0, str(result)
    assert result.stdout == "line 1\nline 2\n", str(result)


def test_sigterm_is_forwarded_and_the_exit_status_is_the_commands(
        artifact: Path, onefile_env: dict[str, str]) -> None:
    """The command dies of the forwarded SIGTERM: pwsup exits 143, at once."""
    child = python_cmd("""
        import os, time
        print("ready", os.getpid(), flush=True)
        time.sleep(30)
    """)
    grace = 20.0
    with Running([str(artifact), "--process-termination-grace-period", f"{grace:g}", "--",
                  *child], onefile_env) as pwsup:
        pwsup.expect_ready(timeout=20)
        sent = time.monotonic()
        pwsup.signal(signal.SIGTERM)
        assert pwsup.wait(timeout=grace) == 143, pwsup.describe()
        assert pwsup.exited_at is not None
        assert pwsup.exited_at - sent < grace, (
            "the command died of SIGTERM: no grace period was needed")


def test_sigterm_handled_by_the_command_exits_0(artifact: Path,
                                                onefile_env: dict[str, str]) -> None:
    child = python_cmd("""
        import os, signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print("ready", os.getpid(), flush=True)
        time.sleep(30)
    """)
    with Running([str(artifact), "--", *child], onefile_env) as pwsup:
        pwsup.expect_ready(timeout=20)
        pwsup.signal(signal.SIGTERM)
        assert pwsup.wait(timeout=10) == 0, pwsup.describe()
