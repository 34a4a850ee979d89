"""The commands compared: how each one wraps a command, and what it supports."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pwbench.venv import LAUNCHER, Venv

FLOOR_SCRIPT = Path(__file__).with_name("floor_supervisor.py")

Argv = list[str]
Env = dict[str, str]


@dataclass(frozen=True)
class Options:
    """What a benchmark asks of the wrapper: grace period and time limit, in seconds."""

    grace: int | None = None
    timeout: int | None = None


def _bare(exe: str, cmd: Sequence[str], opts: Options) -> tuple[Argv, Env]:
    return list(cmd), {}


def _pwsup(exe: str, cmd: Sequence[str], opts: Options) -> tuple[Argv, Env]:
    flags = []
    if opts.grace is not None:
        flags += ["--process-termination-grace-period", str(opts.grace)]
    if opts.timeout is not None:
        flags += ["--process-timeout", str(opts.timeout)]
    return [exe, *flags, "--", *cmd], {}


def _proc_wrapper(exe: str, cmd: Sequence[str], opts: Options) -> tuple[Argv, Env]:
    """proc_wrapper 6.0.2: numeric flags are broken and `--` is not accepted: env vars only.

    Arguments of the command that start with `-` would be taken as proc_wrapper's own, so
    the benchmarks only ever wrap commands whose arguments don't.
    """
    env = {}
    if opts.grace is not None:
        env["PROC_WRAPPER_PROCESS_TERMINATION_GRACE_PERIOD_SECONDS"] = str(opts.grace)
    if opts.timeout is not None:
        env["PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS"] = str(opts.timeout)
    return [exe, "--offline-mode", *cmd], env


def _floor(exe: str, cmd: Sequence[str], opts: Options) -> tuple[Argv, Env]:
    return [exe, str(FLOOR_SCRIPT), *cmd], {}


def _dumb_init(exe: str, cmd: Sequence[str], opts: Options) -> tuple[Argv, Env]:
    return [exe, *cmd], {}


def _tini(exe: str, cmd: Sequence[str], opts: Options) -> tuple[Argv, Env]:
    return [exe, "--", *cmd], {}


def _timeout(exe: str, cmd: Sequence[str], opts: Options) -> tuple[Argv, Env]:
    return [exe, str(opts.timeout or 0), *cmd], {}


Builder = Callable[[str, Sequence[str], Options], tuple[Argv, Env]]


@dataclass(frozen=True)
class Wrapper:
    key: str
    label: str
    exe: str | None
    build: Builder
    escalates: bool = False
    times_out: bool = False

    @property
    def installed(self) -> bool:
        return self.exe is not None

    def command(self, cmd: Sequence[str], opts: Options | None = None) -> tuple[Argv, Env]:
        """argv and extra environment to run `cmd` under this wrapper."""
        if self.exe is None:
            raise RuntimeError(f"{self.label} is not installed")
        return self.build(self.exe, cmd, opts or Options())


def _which(name: str) -> str | None:
    return shutil.which(name)


def discover(venv: Venv) -> dict[str, Wrapper]:
    """Every command compared, keyed; `exe` is None for one that is not installed."""
    wrappers = [
        Wrapper("bare", "none (bare command)", "", _bare),
        Wrapper("pwsup", "pwsup --", str(venv.bin("pwsup")), _pwsup, escalates=True,
                times_out=True),
        Wrapper("proc_wrapper", "proc_wrapper --offline-mode", str(venv.bin(LAUNCHER)),
                _proc_wrapper, escalates=True, times_out=True),
        Wrapper("floor", "floor: 30 lines of Python", str(venv.python), _floor),
        Wrapper("dumb-init", "dumb-init", str(venv.bin("dumb-init")), _dumb_init),
        Wrapper("tini", "tini --", _which("tini"), _tini),
        Wrapper("timeout", "coreutils timeout", _which("timeout"), _timeout, times_out=True),
    ]
    return {wrapper.key: wrapper for wrapper in wrappers}
