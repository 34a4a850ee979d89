"""proc_wrapper's embedded API, as its callers use it: pwsup.compat in a real process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from pwsup.compat import ProcWrapper, ProcWrapperParams


def _offline_params(**settings: Any) -> ProcWrapperParams:
    params = ProcWrapperParams()
    params.offline_mode = True
    for name, value in settings.items():
        setattr(params, name, value)
    return params


def test_config_output_file_holds_only_the_configuration_privately_and_goes(
        tmp_path: Path) -> None:
    out = tmp_path / "conf.json"
    params = _offline_params(config_output_filename=str(out))
    params.initial_config = {"a": {"d": "bc"}, "b__to_resolve": "CONFIG:$.a.d"}
    seen: dict[str, Any] = {}

    def read_it(wrapper: ProcWrapper, data: object, config: dict[str, Any]) -> str:
        seen["mode"] = stat.S_IMODE(os.stat(out).st_mode)
        seen["file"] = json.loads(out.read_text())
        seen["config"] = config
        return "done"

    env = {"PATH": os.environ.get("PATH", ""), "SOME_SECRET_TOKEN": "hunter2"}
    wrapper = ProcWrapper(params=params, env_override=env)
    assert wrapper.managed_call(read_it) == "done"
    assert seen["file"] == {"a": {"d": "bc"}, "b": "bc"}  # resolved, and no ENV copy
    assert "hunter2" not in json.dumps(seen["file"])
    assert seen["mode"] == 0o600
    assert seen["config"]["ENV"]["SOME_SECRET_TOKEN"] == "hunter2"  # the function has it
    assert not out.exists()


def test_counters_constants_and_process_env() -> None:
    attempts: list[int] = []

    def flaky(wrapper: ProcWrapper, data: object, config: dict[str, Any]) -> int:
        attempts.append(wrapper.failed_count)
        if wrapper.failed_count < 1:
            raise RuntimeError("first time fails")
        return wrapper.attempt_count

    params = _offline_params(process_max_retries=1, process_retry_delay=0)
    wrapper = ProcWrapper(params=params, env_override={"ANOTHER_ENV": "250"})
    assert wrapper.managed_call(flaky) == 2
    assert attempts == [0, 1]
    assert ProcWrapper.STATUS_SUCCEEDED == "SUCCEEDED"
    assert ProcWrapper.WRAPPER_FAMILY == "pwsup"
    process_env = wrapper.make_process_env()
    assert process_env["ANOTHER_ENV"] == "250"
    assert process_env["PROC_WRAPPER_OFFLINE_MODE"] == "TRUE"


def test_params_show_the_configuration_in_effect() -> None:
    params = ProcWrapperParams()
    params.initial_config = {"proc_wrapper_params": {
        "task": {"name": "from-config", "run_environment": {"name": "stage"}},
        "offline_mode": True}}
    ProcWrapper(params=params, env_override={})
    assert params.task_name == "from-config"
    assert params.auto_create_task_run_environment_name == "stage"


def test_log_tails_keep_the_last_lines() -> None:
    wrapper = ProcWrapper(params=_offline_params(num_log_lines_sent_on_success=2),
                          env_override={})
    for line in ("one", "two", "three"):
        wrapper.debug_output(line)
    assert wrapper.tails.report(wrapper.params, "SUCCEEDED") == {}  # offline: nothing kept
