"""The upstream tier: proc_wrapper 6.0.2's own unit tests, run against pwsup.

The vendored files are upstream's, unmodified; everything pwsup-specific is here:

- the alias package `alias/proc_wrapper`, on `sys.path` while this tier's modules are
  collected and taken off again afterwards, so no other tier can import it;
- what upstream's `pytest.ini` set for its tests (`IN_PYTEST`, which has no effect on
  pwsup, see D47) and the working directory its relative paths expect (`tests/data`),
  for each test of this tier only;
- one table, `OUTCOMES`, that marks each test that does not pass: `xfail(strict=True)`
  naming the row of docs/differences.md that makes the difference deliberate, or skipped
  because it tests an upstream internal pwsup never claimed. A test not in the table
  must pass.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .outcomes import OUTCOMES

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
ALIAS = str(HERE / "alias")

sys.path.insert(0, ALIAS)


def _in_tier(item: pytest.Item) -> bool:
    return HERE in Path(item.path).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply the table's outcome to each upstream test, keyed by `file::test[params]`."""
    for item in items:
        if not _in_tier(item):
            continue
        item.add_marker(pytest.mark.upstream)
        file = Path(item.path).name
        key = f"{file}::{item.name}"
        outcome = OUTCOMES.get(key) or OUTCOMES.get(key.split("[", 1)[0]) or OUTCOMES.get(file)
        if outcome is None:
            continue
        kind, reason = outcome
        if kind == "skip":
            item.add_marker(pytest.mark.skip(reason=reason))
        else:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Take the alias off the import path once upstream's modules hold its names."""
    while ALIAS in sys.path:
        sys.path.remove(ALIAS)
    for name in [n for n in sys.modules if n == "proc_wrapper" or n.startswith("proc_wrapper.")]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def _upstream_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream's pytest.ini environment, and a working directory where its relative
    paths (`tests/data/...`, files it writes) resolve inside the test's own directory."""
    monkeypatch.setenv("IN_PYTEST", "TRUE")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(HERE / "data")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_reporter_outlives_the_test() -> Iterator[None]:
    """Upstream's tests create ProcWrapper objects and never close them: the embedded
    reporter they share is closed (and so ends) after each test, as pwsup's own tests do,
    so no reporter of one test answers the next one's calls or outlives the tier."""
    yield
    from pwsup.embedded import monitor

    if monitor._current is not None:
        monitor._current.close()
        monitor._current = None
