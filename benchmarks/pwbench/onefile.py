"""The one-file executable, for the start-up benchmark: built from this checkout by
`scripts/build_onefile.py` (shiv) into the run's scratch directory.

Its interpreter line names the interpreter the driver runs on, resolved to its real path:
the same Python as benchmarks/.venv, without the venv, and without `/usr/bin/env` looking
it up on PATH (a pyenv shim there would be a shell script, and time that). It is unpacked
into a SHIV_ROOT of its own by one start before anything is timed, as a deployed file is
after its first start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pwbench.venv import REPO, clean_env

SCRIPT = REPO / "scripts" / "build_onefile.py"


@dataclass(frozen=True)
class OneFile:
    """The built file (None if it could not be built: `problem` says why)."""

    path: Path | None
    interpreter: str
    env: dict[str, str] = field(default_factory=dict)
    """What to add to the environment of every run: its private SHIV_ROOT."""
    problem: str = ""


def build(work: Path) -> OneFile:
    """Build the file in `work/onefile/` and unpack it once; never raises for a failed build
    (it needs PyPI for shiv), which is reported in the table instead."""
    interpreter = os.path.realpath(sys.executable)
    argv = [sys.executable, str(SCRIPT), "--output", str(work / "onefile"),
            "--python", interpreter]
    result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True,
                            check=False, stdin=subprocess.DEVNULL)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return OneFile(None, interpreter, problem=f"build failed: {last}")
    path = Path(lines[-1])
    env = {"SHIV_ROOT": str(work / "shiv-root")}
    first = subprocess.run([str(path), "--version"], env={**clean_env(), **env},
                           capture_output=True, text=True, check=False,
                           stdin=subprocess.DEVNULL)
    if first.returncode != 0:
        return OneFile(None, interpreter, problem=f"its first start failed: {first.stderr}")
    return OneFile(path, interpreter, env)
