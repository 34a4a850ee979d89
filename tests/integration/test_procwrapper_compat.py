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


PRINT_ENV_AND_INPUT = ("import json, os, sys; "
                       "print(json.dumps({'env': dict(os.environ), "
                       "'input': open(os.environ['PROC_WRAPPER_INPUT_FILENAME']).read()}))")


def test_wrapped_command_gets_proc_wrappers_variables_and_input_file(tmp_path: Path) -> None:
    """The command's environment has the PROC_WRAPPER_* variables proc_wrapper sets, with
    its values for the same settings (never the API key), and --input-filename holds the
    input value for the command to read."""
    import subprocess

    from helpers.runner import clean_env, pwsup_cmd, python_cmd

    input_file = tmp_path / "input.json"
    options = ["--api-base-url", "http://127.0.0.1:9", "--api-key", "",
               "--input-value", '{"n": 1}', "--input-filename", str(input_file),
               "--input-value-format", "json", "--result-filename", str(tmp_path / "r"),
               "--rollbar-access-token", "tok", "--process-timeout", "30",
               "--api-request-timeout", "12", "--task-name", "t1"]
    env = clean_env()
    result = subprocess.run(pwsup_cmd(python_cmd(PRINT_ENV_AND_INPUT), *options), env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result
    seen = json.loads(result.stdout)
    child = seen["env"]
    expected = {
        "PROC_WRAPPER_API_BASE_URL": "http://127.0.0.1:9",
        "PROC_WRAPPER_API_MANAGED_PROBABILITY": "1.0",
        "PROC_WRAPPER_API_FAILURE_REPORT_PROBABILITY": "1.0",
        "PROC_WRAPPER_API_TIMEOUT_REPORT_PROBABILITY": "1.0",
        "PROC_WRAPPER_API_REQUEST_TIMEOUT_SECONDS": "12",
        "PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER": "FALSE",
        "PROC_WRAPPER_INPUT_FILENAME": str(input_file),
        "PROC_WRAPPER_INPUT_VALUE_FORMAT": "json",
        "PROC_WRAPPER_RESULT_FILENAME": str(tmp_path / "r"),
        "PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS": "30",
        "PROC_WRAPPER_TASK_NAME": "t1",
        "PROC_WRAPPER_PREVENT_OFFLINE_EXECUTION": "FALSE",
    }
    assert {k: child.get(k) for k in expected} == expected
    for name in ("API_ERROR_TIMEOUT_SECONDS", "API_RETRY_DELAY_SECONDS",
                 "API_RESUME_DELAY_SECONDS", "ROLLBAR_TIMEOUT", "ROLLBAR_RETRIES",
                 "ROLLBAR_RETRY_DELAY_SECONDS"):
        assert f"PROC_WRAPPER_{name}" in child, name
    assert "PROC_WRAPPER_API_KEY" not in child
    assert "PROC_WRAPPER_ROLLBAR_ACCESS_TOKEN" not in child
    assert child["PWSUP_RUN_COOKIE"]
    assert json.loads(seen["input"]) == {"n": 1}
    assert not input_file.exists()  # removed once the run is over


def test_offline_mode_exports_no_api_settings(tmp_path: Path) -> None:
    """With --offline-mode the API settings are not exported, as proc_wrapper does."""
    import subprocess

    from helpers.runner import clean_env, pwsup_cmd, python_cmd

    code = "import json, os; print(json.dumps(dict(os.environ)))"
    result = subprocess.run(pwsup_cmd(python_cmd(code), "--offline-mode"), env=clean_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result
    child = json.loads(result.stdout)
    assert child["PROC_WRAPPER_OFFLINE_MODE"] == "TRUE"
    assert not [k for k in child if k.startswith("PROC_WRAPPER_API_")]
    assert "PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER" not in child
