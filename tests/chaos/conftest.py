"""Chaos-only fixtures, options and reporting.

- `--chaos-seed N`: the seed of the random jitter the chaos matrix (test_matrix.py) puts at
  phase boundaries. Without it a seed is drawn; either way it is printed at the start of
  the session and attached to every failing chaos test, so a run can be replayed:
  `pytest tests/chaos --chaos-seed N` (or `pytest tests/chaos/test_matrix.py --chaos-seed
  N`; the option is known when tests/chaos, or a file in it, is on the command line).
- `chaos_rng`: a `random.Random` seeded from the session seed and the test's name, so one
  case gets the same jitter on replay whatever else was selected.
- `full_tmpfs`: a 16 KiB tmpfs mounted in a temporary directory and filled to the last
  byte (a full disk); the test is skipped, with the reason, when mounting is not permitted.
- At the end of the session: the matrix summary (cases, passed, failed, and which faults
  were covered in which phases), when matrix cases ran.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _pytest.terminal import TerminalReporter

_SEED = pytest.StashKey[int]()
_HEADER_SHOWN = pytest.StashKey[bool]()
_MATRIX = pytest.StashKey[ModuleType]()
_CELLS = pytest.StashKey[dict[str, tuple[str, str]]]()
"""nodeid -> (phase, fault) of every collected matrix case."""
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos-seed", type=int, default=None, metavar="N",
                     help="seed of the chaos matrix's random jitter (replays a run)")


def chaos_seed(config: pytest.Config) -> int:
    """The session's seed: --chaos-seed, else drawn once."""
    if _SEED not in config.stash:
        given = config.getoption("chaos_seed", default=None)
        config.stash[_SEED] = (int(given) if given is not None
                               else random.SystemRandom().randrange(1, 2**31))
    return config.stash[_SEED]


def _seed_line(config: pytest.Config) -> str:
    seed = chaos_seed(config)
    return f"chaos seed: {seed} (replay with --chaos-seed {seed})"


def pytest_report_header(config: pytest.Config) -> str:
    config.stash[_HEADER_SHOWN] = True
    return _seed_line(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cells: dict[str, tuple[str, str]] = {}
    for item in items:
        module = getattr(item, "module", None)
        callspec = getattr(item, "callspec", None)
        if module is None or callspec is None or not getattr(module, "CHAOS_MATRIX", False):
            continue
        case = callspec.params.get("case")
        if case is None:
            continue
        config.stash[_MATRIX] = module
        cells[item.nodeid] = (case.phase, case.fault)
    config.stash[_CELLS] = cells
    if cells and not config.stash.get(_HEADER_SHOWN, False):
        # This conftest was loaded after the session header (tests/chaos was not on the
        # command line): print the seed before the first case runs instead.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(_seed_line(config))
        config.stash[_HEADER_SHOWN] = True


@pytest.fixture
def chaos_rng(request: pytest.FixtureRequest) -> random.Random:
    """Random numbers for one test, reproducible from the session seed and its name."""
    return random.Random(f"{chaos_seed(request.config)}:{request.node.name}")


@pytest.fixture
def chaos_seed_value(request: pytest.FixtureRequest) -> int:
    return chaos_seed(request.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[
        pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        seed = chaos_seed(item.config)
        report.sections.append(("chaos seed", f"{seed}: replay with --chaos-seed {seed}"))
    return report


def pytest_terminal_summary(terminalreporter: TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    cells = config.stash.get(_CELLS, {})
    module = config.stash.get(_MATRIX, None)
    if not cells or module is None:
        return
    outcomes: dict[str, str] = {}
    for key, reports in terminalreporter.stats.items():
        outcome = {"passed": "passed", "failed": "failed", "error": "failed",
                   "skipped": "skipped"}.get(key)
        for report in reports:
            nodeid = getattr(report, "nodeid", None)
            if outcome is None or nodeid not in cells:
                continue
            if _RANK[outcome] >= _RANK[outcomes.get(nodeid, "passed")]:
                outcomes[nodeid] = outcome
    if not outcomes:
        return
    by_cell = {cells[nodeid]: outcome for nodeid, outcome in outcomes.items()}
    terminalreporter.section("chaos matrix")
    for line in module.summary_lines(by_cell):
        terminalreporter.write_line(line)
    terminalreporter.write_line(_seed_line(config))


# -- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs, mounted in a temporary directory and filled: every write fails with
    ENOSPC. Unmounted afterwards. Skips when mount(2) is not permitted here."""
    mountpoint = tmp_path / "full-disk"
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        fd = os.open(mountpoint / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (4096, 1):  # blocks, then what is left below a block
                while True:
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)
