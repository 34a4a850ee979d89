"""Build pwsup as one executable file: a zipapp made with shiv, in dist/.

    python3 scripts/build_onefile.py            # prints the path of the artifact

The artifact, `dist/pwsup-<version>-py3.<minor>.pyz`, holds pwsup and every dependency;
it needs nothing installed but a Python of the same minor version as the one that built
it (the dependencies include compiled extensions). Run it like the `pwsup` command:
`./dist/pwsup-0.1.0-py3.11.pyz -- ./job`. On its first start it unpacks itself once into
`~/.shiv` (or `$SHIV_ROOT`); later starts import from there directly.

Why shiv and not PyInstaller: see docs/operations.md ("One-file executable"). In short,
pwsup's start-up time is one of its headline figures, and a PyInstaller one-file binary
unpacks its whole archive on every start and stays behind as a parent process of pwsup
(so pwsup would not be PID 1 in a container).

How it builds, so nothing leaks into the work tree or the build:

- shiv is installed from PyPI into a throwaway venv, `build/onefile/venv/` (gitignored),
  made with the interpreter running this script, and reused while that interpreter and
  the pinned shiv version stay the same;
- pwsup is built from a clean copy of `pyproject.toml`, `README.md` and `src/` in
  `build/onefile/src/` (an in-tree setuptools build leaves `build/lib` behind, and a stale
  one can ship modules that no longer exist);
- the zipapp is reproducible for a given set of inputs (`--reproducible`).

Options: `--output DIR` (default dist/), `--python SHEBANG` (default
`/usr/bin/env python3.<minor of this interpreter>`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

SHIV = "shiv==1.0.8"
ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "onefile"


def _version() -> str:
    text = (ROOT / "src" / "pwsup" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
    if match is None:
        raise SystemExit("cannot find __version__ in src/pwsup/_version.py")
    return match.group(1)


def _tool_venv() -> Path:
    """The throwaway venv with shiv in it; (re)made when the interpreter or pin changed."""
    home = BUILD / "venv"
    stamp = home / "pwsup-build-stamp"
    wanted = f"{sys.executable}\n{sys.version}\n{SHIV}\n"
    python = home / "bin" / "python"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted and python.exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    print(f"creating {home.relative_to(ROOT)} with {SHIV}", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SHIV])
    stamp.write_text(wanted, encoding="utf-8")
    return home


def _clean_source() -> Path:
    """A copy of exactly what building pwsup needs, without caches or build leftovers."""
    source = BUILD / "src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return source


def _run(argv: list[str]) -> None:
    print("+ " + " ".join(argv), file=sys.stderr)
    subprocess.run(argv, check=True, stdout=sys.stderr)


def build(output: Path, shebang: str) -> Path:
    tools = _tool_venv()
    source = _clean_source()
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    output.mkdir(parents=True, exist_ok=True)
    artifact = output / f"pwsup-{_version()}-py{minor}.pyz"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    argv = [str(tools / "bin" / "shiv"), "--console-script", "pwsup",
            "--output-file", str(artifact), "--python", shebang, "--compile-pyc",
            "--reproducible", "--quiet", str(source)]
    print("+ " + " ".join(argv), file=sys.stderr)
    subprocess.run(argv, check=True, stdout=sys.stderr, env=env)
    return artifact


def main(argv: list[str]) -> int:
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    parser = argparse.ArgumentParser(description="Build pwsup as one executable file (shiv).")
    parser.add_argument("--output", type=Path, default=ROOT / "dist",
                        help="directory for the artifact (default: dist/)")
    parser.add_argument("--python", default=f"/usr/bin/env python{minor}",
                        help="the artifact's interpreter line (default: %(default)s)")
    args = parser.parse_args(argv)
    artifact = build(args.output.resolve(), args.python)
    size = artifact.stat().st_size / 1e6
    print(f"built {artifact.name} ({size:.1f} MB)", file=sys.stderr)
    print(artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
