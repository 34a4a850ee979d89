"""benchmarks/.venv: pwsup (non-editable, reinstalled every run), proc_wrapper 6.0.2, dumb-init,
boto3, moto[server], pebble and supervisor.

The venv is reused while the interpreter and the pinned packages are unchanged; pwsup's
dependencies are (re)installed when pyproject.toml changes. pwsup is built from a clean copy
of the repository's files (`git ls-files`) in benchmarks/.work/, never in the work tree: an
in-tree setuptools build would leave build/ behind, and a stale build/lib can put modules
that were deleted from src/ into the wheel.

pwsup also installs a `proc_wrapper` console script, which replaces cloudreactor-procwrapper's
in bin/. So the real proc_wrapper gets its own launcher, `bin/cloudreactor-proc_wrapper`,
written exactly like pip's console-script launcher for its entry point.

pip itself is upgraded first (`PIP`): since 25.0 the console-script launchers it writes no
longer import `re` (~1.5 ms of every start of any console script, pwsup's and
proc_wrapper's alike); the pip a venv is created with may be older.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
VENV = BENCH_DIR / ".venv"
WORK = BENCH_DIR / ".work"
PINNED = ("cloudreactor-procwrapper==6.0.2", "dumb-init", "setuptools>=68", "wheel",
          "boto3", "moto[server]", "pebble", "supervisor", "loky")
"""boto3: pwsup's `aws` extra and proc_wrapper's secrets; moto[server]: the local Secrets
Manager of the secrets benchmark; pebble: the reference of the isolated and pool
benchmarks; supervisor: the supervisord of the memory benchmark; loky: a peer in the pool
benchmark."""
PIP = "pip>=25.0"
STAMP_NAME = "pwbench-stamp.json"
LAUNCHER = "cloudreactor-proc_wrapper"
_LAUNCHER_TEXT = """#!{python}
import sys
from {module} import {function}
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit({function}())
"""


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    def site_packages(self) -> Path:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "lib" / version / "site-packages"


def clean_env() -> dict[str, str]:
    """The environment for installs and measured runs: no PYTHON*/PROC_WRAPPER_*/PWSUP_*.

    PYTHONDONTWRITEBYTECODE in particular would make nothing different for installed code
    (pip compiles it) but is dropped so every measured Python process behaves by default.
    """
    prefixes = ("PYTHON", "PROC_WRAPPER_", "PWSUP_", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


def _run(argv: Sequence[str], what: str) -> str:
    result = subprocess.run(list(argv), env=clean_env(), capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise RuntimeError(f"{what} failed (exit code {result.returncode}): {' '.join(argv)}")
    return result.stdout


def _pip(venv: Venv, *args: str) -> None:
    _run([str(venv.python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          *args], "pip install")


def _want_stamp() -> dict[str, object]:
    return {"python": sys.version, "executable": sys.executable, "pinned": [PIP, *PINNED]}


def _read_stamp(venv: Venv) -> dict[str, object]:
    try:
        data = json.loads((venv.root / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pyproject_hash() -> str:
    return hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()


def _repo_files() -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [name for name in out.decode().split("\0") if name]


def source_copy() -> Path:
    """A clean copy of the repository's files (minus benchmarks/) to build pwsup from."""
    dest = WORK / "pwsup-src"
    shutil.rmtree(dest, ignore_errors=True)
    files = [name for name in _repo_files() if not name.startswith("benchmarks/")]
    if not files:  # not a git checkout: copy the tree minus the usual litter
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".ci-venv", "benchmarks", "build", "dist", "*.egg-info",
            "__pycache__", ".*_cache", ".hypothesis"))
        return dest
    for name in files:
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _create(venv: Venv) -> None:
    shutil.rmtree(venv.root, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(venv.root)], "creating the venv")
    _pip(venv, "--upgrade", PIP)  # alone: the scripts of what follows are written by it
    _pip(venv, *PINNED)


def _write_launcher(venv: Venv) -> None:
    code = ("import importlib.metadata as m; d = m.distribution('cloudreactor-procwrapper');"
            "print([e.value for e in d.entry_points if e.name == 'proc_wrapper'][0])")
    entry = _run([str(venv.python), "-c", code], "reading proc_wrapper's entry point").strip()
    module, function = entry.split(":")
    path = venv.bin(LAUNCHER)
    path.write_text(_LAUNCHER_TEXT.format(python=venv.python, module=module,
                                          function=function), encoding="utf-8")
    path.chmod(0o755)


def _check_bytecode(venv: Venv) -> list[str]:
    cached = venv.site_packages() / "pwsup" / "__pycache__"
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    if not list(cached.glob(f"cli.{tag}.pyc")):
        return [f"warning: no compiled bytecode in {cached}: start-up numbers will be inflated"]
    return []


def ensure() -> tuple[Venv, list[str]]:
    """Create or reuse benchmarks/.venv and (re)install pwsup; (venv, notes about set-up)."""
    venv = Venv(VENV)
    WORK.mkdir(parents=True, exist_ok=True)
    stamp = _read_stamp(venv)
    notes = []
    fresh = not venv.python.exists() or any(stamp.get(k) != v for k, v in _want_stamp().items())
    if fresh:
        _create(venv)
        notes.append("created benchmarks/.venv")
    source = source_copy()
    if fresh or stamp.get("pyproject") != _pyproject_hash():
        _pip(venv, "--no-build-isolation", str(source))  # with pwsup's dependencies
    _pip(venv, "--no-build-isolation", "--no-deps", "--force-reinstall", str(source))
    _write_launcher(venv)
    stamp = {**_want_stamp(), "pyproject": _pyproject_hash()}
    (venv.root / STAMP_NAME).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
    shutil.rmtree(source, ignore_errors=True)
    return venv, notes + _check_bytecode(venv)


def versions(venv: Venv) -> dict[str, str]:
    """Installed versions of the Python packages under test."""
    code = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
            "('pwsup', 'cloudreactor-procwrapper', 'dumb-init', 'boto3', 'moto', 'pebble', "
            "'supervisor', 'loky')}))")
    data = json.loads(_run([str(venv.python), "-c", code], "reading versions"))
    return {str(key): str(value) for key, value in data.items()}
