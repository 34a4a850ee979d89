"""The note about the machine printed at the top."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping

from pwbench.wrappers import Wrapper


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version_line(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def note(wrappers: Mapping[str, Wrapper], versions: Mapping[str, str], mode: str) -> str:
    tini = wrappers["tini"]
    timeout = wrappers["timeout"]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{cpu_model()}; kernel {platform.release()}; load average at start {load}",
        f"- python: {sys.version.split()[0]} ({sys.executable}), used for the venv and the "
        "driver",
        f"- pwsup {versions.get('pwsup', '?')} (non-editable install of this checkout); "
        f"cloudreactor-procwrapper {versions.get('cloudreactor-procwrapper', '?')}; "
        f"dumb-init {versions.get('dumb-init', '?')}; tini: "
        + (_version_line([str(tini.exe), "--version"]) if tini.exe else "not installed")
        + "; " + (_version_line([str(timeout.exe), "--version"]) if timeout.exe
                  else "coreutils timeout: not installed")
        + f"; boto3 {versions.get('boto3', '?')}, moto {versions.get('moto', '?')}, "
        f"pebble {versions.get('pebble', '?')}, supervisor {versions.get('supervisor', '?')}",
        f"- mode: {mode}; measured processes run with PYTHON*/PROC_WRAPPER_*/PWSUP_* "
        "variables removed from the environment (PYTHONDONTWRITEBYTECODE included), stdio on "
        "/dev/null, each in its own process group",
    ]
    return "\n".join(lines)
