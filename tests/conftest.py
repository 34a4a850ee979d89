"""Shared fixtures: a clean environment for pwsup, and process cleanup for every test that
starts processes (tests/integration and tests/chaos).

Cleanup works on the whole process tree of the test process, which is made a child
subreaper for the duration of each such test: whatever a test started — pwsup, its
command, a reporter whose parent was SIGKILLed, a daemon that called setsid() — is a
descendant of the test process until it exits, so nothing can escape to init. After the
test, every live descendant is SIGKILLed and every zombie child reaped. A test that passed
but left something running fails in teardown: pwsup must leave nothing behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import procs
from helpers.bounds import SLACK
from helpers.runner import Running, clean_env

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

PROCESS_TEST_DIRS = frozenset({"integration", "chaos", "hostile"})
LEFTOVER_GRACE = SLACK
"""How long teardown lets live descendants finish by themselves before calling them
leftovers: a process on its way out may need a moment to be gone, longer on a busy
machine. Only a test that leaves something behind waits
this out."""


def _starts_processes(item: pytest.Item) -> bool:
    tests_dir = Path(__file__).resolve().parent
    try:
        relative = Path(item.path).resolve().relative_to(tests_dir)
    except ValueError:
        return False
    return bool(relative.parts) and relative.parts[0] in PROCESS_TEST_DIRS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[
        pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


_CALL_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def env() -> dict[str, str]:
    """os.environ without PROC_WRAPPER_*/PWSUP_* variables: pwsup with its defaults, offline."""
    return clean_env()


@pytest.fixture(autouse=True)
def process_cleanup(request: pytest.FixtureRequest) -> Iterator[None]:
    """Kill and reap everything a process test left; fail a passing test that left any."""
    if not _starts_processes(request.node):
        yield
        return
    procs.set_child_subreaper(True)
    try:
        yield
    finally:
        _close_keeper()
        me = os.getpid()
        live = [p for p in map(procs.Proc.of, procs.pid_tree(me)) if p.alive()]
        leftovers = []
        if live:
            try:
                procs.wait_for_exit(live, LEFTOVER_GRACE)
            except AssertionError:
                leftovers = [(p.pid, procs.cmdline(p.pid)) for p in live if p.alive()]
        procs.kill_tree(me, include_root=False)
        procs.reap_zombie_children()
        procs.set_child_subreaper(False)
    if leftovers and request.node.stash.get(_CALL_PASSED, False):
        pytest.fail(f"processes left running after the test: {leftovers}")


def _close_keeper() -> None:
    """run_isolated's keeper lives as long as the process that called run_isolated (here,
    pytest): not a leftover of this test. Closing it as the caller's exit would lets it
    exit, and reaps it."""
    keeper = sys.modules.get("pwsup.embedded.keeper")
    if keeper is not None:
        keeper.close()


@pytest.fixture
def start(env: dict[str, str]) -> Iterator[Callable[..., Running]]:
    """Factory: start(args, **kwargs) -> Running (env defaults to the clean one). Every
    process started this way is closed (killed if need be, reaped) after the test."""
    started: list[Running] = []

    def _start(args: Sequence[str], **kwargs: object) -> Running:
        kwargs.setdefault("env", env)
        running = Running(args, **kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield _start
    for running in started:
        running.close()
