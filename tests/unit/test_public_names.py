"""The names `pwsup` offers at the top level, and the price of `import pwsup`.

`from pwsup import run_isolated, StatusUpdater, PwsupError, ...` is the documented way in;
each name is imported on first use, so `import pwsup` alone — the first import of every
supervisor start and of user code that sends status updates — loads nothing else.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import pwsup

HOMES = {
    "run_isolated": "pwsup.embedded",
    "IsolatedPool": "pwsup.embedded",
    "update_status": "pwsup.embedded",
    "StatusUpdater": "pwsup.status",
    **dict.fromkeys((
        "PwsupError", "IsolationError", "WorkerCrashed", "WorkerTimeout", "TransferError",
        "ResultNotPicklable", "ExceptionNotPicklable", "ResultNotUnpicklable",
        "RemoteTraceback", "ArgumentsNotPicklable"), "pwsup.errors"),
}
"""Every public name and the module it is public in."""


def fresh(code: str) -> object:
    """Run `code` in a new interpreter; it prints one JSON value, returned decoded."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_import_pwsup_loads_only_the_package_and_its_version() -> None:
    """Nothing lazy is loaded by `import pwsup`: not embedded mode, not the errors, not the
    status client, not `typing`."""
    new = fresh(
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import pwsup\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n")
    assert new == ["pwsup", "pwsup._version"]


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_public_name_is_the_object_its_module_defines(name: str) -> None:
    assert getattr(pwsup, name) is getattr(importlib.import_module(HOMES[name]), name)


def test_from_import_of_every_public_name_in_a_fresh_interpreter() -> None:
    """The statement users write works, and loads what it names."""
    loaded = fresh(
        "import sys, json\n"
        f"from pwsup import {', '.join(sorted(HOMES))}\n"
        "print(json.dumps([m in sys.modules for m in "
        "('pwsup.embedded', 'pwsup.errors', 'pwsup.status')]))\n")
    assert loaded == [True, True, True]


def test_all_and_dir_list_every_public_name() -> None:
    assert sorted(pwsup.__all__) == sorted([*HOMES, "__version__"])
    assert set(pwsup.__all__) <= set(dir(pwsup))


def test_errors_share_the_package_root() -> None:
    assert issubclass(pwsup.WorkerTimeout, pwsup.IsolationError)
    assert issubclass(pwsup.IsolationError, pwsup.PwsupError)


def test_unknown_names_are_attribute_errors_and_submodules_still_import() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = pwsup.no_such_name
    assert not hasattr(pwsup, "Params")
    from pwsup import exitcodes

    assert exitcodes is sys.modules["pwsup.exitcodes"]
