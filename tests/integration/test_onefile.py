"""The one-file build (scripts/build_onefile.py) behaves like the installed `pwsup`.

The artifact is taken from $PWSUP_ONEFILE, else the newest executable `dist/pwsup*`. Without
one the tests are skipped (build it with `python3 scripts/build_onefile.py`) — unless
PWSUP_ONEFILE is set: then the artifact is required, and a missing one fails every test.
`.ci/run` builds it and sets PWSUP_ONEFILE, so in CI these tests always run. The artifact is
run as an executable, with its own interpreter line, through a few conformance checks: exit
codes, signals forwarded to the command (SIGTERM, SIGHUP, SIGUSR1), argv passed verbatim,
stdin passed through, and a start with neither the source tree nor a venv anywhere on its
path. Its unpacked copy goes to a temporary SHIV_ROOT, never to the user's ~/.shiv.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from helpers.runner import Running, clean_env, print_signals_cmd, python_cmd, run

ROOT = Path(__file__).resolve().parents[2]
FIRST_START = 60.0
"""Seconds the first start may take: it unpacks the archive (and compiles it) once."""
REQUIRED = "PWSUP_ONEFILE"
"""Set (by .ci/run, or by hand): the artifact to test, which must then exist."""


def _find_artifact() -> tuple[Path | None, str]:
    given = os.environ.get(REQUIRED)
    if given is not None:
        path = Path(given)
        if not path.is_file():
            pytest.fail(f"{REQUIRED}={given!r} is not a file: it is set, so the one-file "
                        "build is required (`python3 scripts/build_onefile.py` prints its path)")
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


def test_forwarded_signals_reach_the_command(artifact: Path,
                                             onefile_env: dict[str, str]) -> None:
    """HUP and USR1 reach the command and do not end the run; the command's exit status
    after a forwarded USR2 is pwsup's."""
    child = print_signals_cmd("--exit-on", "SIGUSR2=5")
    with Running([str(artifact), "--", *child], onefile_env) as pwsup:
        pwsup.expect_ready(timeout=20)
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            pwsup.signal(signum)
            assert pwsup.read_line() == signum.name, pwsup.describe()
        assert pwsup.wait(timeout=10) == 5, pwsup.describe()


def _path_outside(*excluded: Path) -> str:
    """$PATH without the directories inside any of `excluded`."""
    kept = [entry for entry in os.environ.get("PATH", "").split(os.pathsep)
            if entry and not any(Path(entry).resolve().is_relative_to(place)
                                 for place in excluded)]
    return os.pathsep.join(kept)


def _mapped_files(maps: str) -> set[Path]:
    """The files a /proc/PID/maps listing has mapped (the sixth field, when it is a path)."""
    fields = (line.split(maxsplit=5) for line in maps.splitlines())
    return {Path(f[5].strip()) for f in fields if len(f) == 6 and f[5].startswith("/")}


def test_starts_without_the_source_tree_or_a_venv_on_its_path(artifact: Path,
                                                                 tmp_path: Path) -> None:
    """A copy of the file, outside the checkout, started from there with a PATH that holds
    neither the checkout nor the venv running the tests, and no PYTHON* variables. The
    interpreter its first line finds there cannot import pwsup by itself, yet the file runs
    the command; pwsup's parent has nothing of the checkout or the venv mapped, and its
    compiled dependency (setproctitle, loaded by the parent to name itself) is mapped from
    the unpacked copy in SHIV_ROOT: pwsup's packages came from the file itself."""
    excluded = [ROOT] + ([Path(sys.prefix).resolve()] if sys.prefix != sys.base_prefix
                         else [])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / "pwsup.pyz"
    shutil.copy2(artifact, copy)
    shiv_root = tmp_path / "shiv-root"
    env = {key: value for key, value in clean_env().items()
           if not key.startswith("PYTHON") and key != "VIRTUAL_ENV"}
    env |= {"PATH": _path_outside(*excluded), "SHIV_ROOT": str(shiv_root)}
    interpreter = copy.read_text(encoding="latin-1").split("\n", 1)[0].split()[-1]
    found = shutil.which(interpreter, path=env["PATH"])
    assert found is not None, (
        f"the file's interpreter line wants {interpreter}, and there is none on PATH outside "
        f"the checkout and the venv: {env['PATH']}")
    alone = run([found, "-c", "import pwsup"], env, cwd=elsewhere)
    assert "No module named 'pwsup'" in alone.stderr, (
        f"{found} imports pwsup without the file: nothing here would show where the file's "
        f"pwsup came from\n{alone}")

    result = run([str(copy), "--", "sh", "-c", "cat /proc/$PPID/maps"], env, cwd=elsewhere,
                 timeout=FIRST_START)
    assert result.returncode == 0, str(result)
    mapped = _mapped_files(result.stdout)
    assert mapped, str(result)
    for place in excluded:
        inside = sorted(str(f) for f in mapped if f.is_relative_to(place))
        assert inside == [], f"pwsup's parent has files from {place} mapped: {inside}"
    unpacked = [f for f in mapped if f.is_relative_to(shiv_root)]
    assert any("setproctitle" in f.parts for f in unpacked), (
        f"no compiled extension of the artifact's mapped from {shiv_root}: "
        f"{sorted(map(str, mapped))}")
