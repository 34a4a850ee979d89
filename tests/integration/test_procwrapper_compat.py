"""proc_wrapper's embedded API, as its callers use it: pwsup.compat in a real process."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.embedded import bare_env, online_params, reported_to
from helpers.fake_cloudreactor import FakeCloudReactor
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


# -- reported calls: the fake CloudReactor server on 127.0.0.1 --------------------------------


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with reported_to("compat-task") as server:
        yield server


def _bare_env() -> dict[str, str]:
    return bare_env()


def _online(api: FakeCloudReactor, **settings: Any) -> ProcWrapperParams:
    return online_params(api, "compat-task", **settings)


def _patches(api: FakeCloudReactor) -> list[dict[str, Any]]:
    return [r.json for r in api.requests if r.method == "PATCH" and r.json is not None]


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
@pytest.mark.parametrize("outcome", ["SUCCEEDED", "FAILED"])
def test_status_held_back_after_a_retry_goes_in_the_final_report(
        api: FakeCloudReactor, isolated: bool, outcome: str) -> None:
    """As proc_wrapper: once an update has gone (here the failed attempt's), update_status
    values wait for the next update of any kind — the final report, which carries them
    beside its own fields, which status values never replace (D74); no RUNNING update
    carries them."""
    params = _online(api, process_max_retries=1)

    def work(w: ProcWrapper, data: Any, config: Any) -> str:
        if w.failed_count == 0:
            raise RuntimeError("the first attempt fails")
        w.update_status(success_count=4, error_count=5, last_status_message="hello",
                        extra_status_props={"extra": "yo", "status": "SUCCEEDED",
                                            "failed_attempts": 0})
        if outcome == "FAILED":
            raise RuntimeError("the second attempt fails too")
        return "done"

    wrapper = ProcWrapper(params=params, env_override=_bare_env(), isolated=isolated)
    if outcome == "FAILED":
        with pytest.raises(RuntimeError, match="too"):
            wrapper.managed_call(work)
    else:
        assert wrapper.managed_call(work) == "done"
    patches = _patches(api)
    assert [p["status"] for p in patches] == ["RUNNING", outcome]
    assert patches[0] == {"status": "RUNNING", "failed_attempts": 1}
    final = patches[1]
    assert {k: final.get(k) for k in ("success_count", "error_count", "last_status_message",
                                       "extra")} == {
        "success_count": 4, "error_count": 5, "last_status_message": "hello", "extra": "yo"}
    assert final.get("failed_attempts") == (2 if outcome == "FAILED" else None)
    [uuid] = list(api.executions)
    assert api.execution(uuid)["success_count"] == 4
    assert api.violations == []


class _LambdaContext:
    """What AWS Lambda hands a handler, as far as pwsup reads it."""

    function_name = "compat-fn"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-2:123456789012:function:compat-fn"
    memory_limit_in_mb = 512
    aws_request_id = "request-1"
    log_group_name = "group"
    log_stream_name = "stream"


def test_the_execution_uuid_in_the_input_is_the_execution_reported(
        api: FakeCloudReactor) -> None:
    """`ProcWrapper(params, runtime_context=..., input_value=event)`, as a Lambda handler
    writes it: the Task Execution UUID the event carries is adopted — the start attaches to
    it (PATCH, never a POST), the function, the wrapper and a command it starts see it, and
    the final status goes to it. A second invocation with the same event calls nothing and
    says why: the execution has already finished."""
    from pwsup.embedded.monitor import Denied

    uuid = api.create_execution("compat-task")["uuid"]
    event = {"cloudreactor_context": {"proc_wrapper_params": {"task_execution": {"uuid": uuid}}},
             "n": 5}
    seen: list[tuple[Any, str | None, str | None]] = []

    def work(w: ProcWrapper, data: Any, config: Any) -> int:
        seen.append((data, w.task_execution_uuid,
                     w.make_process_env().get("PROC_WRAPPER_TASK_EXECUTION_UUID")))
        return int(data["n"])

    def handler(event: dict[str, Any], context: object) -> Any:
        wrapper = ProcWrapper(params=_online(api), runtime_context=context, input_value=event,
                              env_override=_bare_env())
        return wrapper.managed_call(work)

    assert handler(event, _LambdaContext()) == 5
    assert seen == [(event, uuid, uuid)]
    requests = [(r.method, r.path.split("?")[0], (r.json or {}).get("status"))
                for r in api.requests]
    assert requests == [("PATCH", f"/api/v1/task_executions/{uuid}/", "RUNNING"),
                        ("PATCH", f"/api/v1/task_executions/{uuid}/", "SUCCEEDED")]
    assert list(api.executions) == [uuid]
    assert api.execution(uuid)["status"] == "SUCCEEDED"

    with pytest.raises(Denied) as denied:
        handler(event, _LambdaContext())
    assert len(seen) == 1
    assert f"Task Execution {uuid} has already finished" in str(denied.value)
    assert "concurrency" not in str(denied.value)
    assert denied.value.exit_code == 75
    assert [r.method for r in api.requests if r.method == "POST"] == []
    assert list(api.executions) == [uuid]
    assert api.execution(uuid)["status"] == "SUCCEEDED"
    assert api.violations == []


def test_each_call_reports_its_own_log_tail(api: FakeCloudReactor) -> None:
    """One wrapper, two calls: each final report carries the lines of its own call (and
    of what was logged before it), never an earlier call's (D81); a logging handler taken
    once keeps feeding every later call."""
    import logging

    wrapper = ProcWrapper(params=_online(api, num_log_lines_sent_on_success=10),
                          env_override=_bare_env())
    logger = logging.getLogger("compat-tail-test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(wrapper.get_embedded_logging_handler())
    try:
        def first(w: ProcWrapper, data: Any, config: Any) -> str:
            logger.info("line of the first call")
            return "one"

        def second(w: ProcWrapper, data: Any, config: Any) -> str:
            w.debug_output("line of the second call")
            return "two"

        logger.info("before the first call")
        assert wrapper.managed_call(first) == "one"
        assert wrapper.managed_call(second) == "two"
    finally:
        logger.handlers.clear()
    finals = [p for p in _patches(api) if p["status"] == "SUCCEEDED"]
    assert [f["debug_log_tail"] for f in finals] == [
        "before the first call\nline of the first call\n", "line of the second call\n"]
    assert len(api.executions) == 2
    assert api.violations == []


def _call_with_one_status_update(wrapper: ProcWrapper, api: FakeCloudReactor) -> float:
    """managed_call of a function whose one update_status goes at once (the first update);
    seconds from its return to managed_call's."""
    import time

    returned: list[float] = []

    def work(w: ProcWrapper, data: Any, config: Any) -> str:
        w.update_status(success_count=7)
        api.wait_for(lambda r: (r.json or {}).get("success_count") == 7, timeout=30)
        returned.append(time.monotonic())
        return "done"

    assert wrapper.managed_call(work) == "done"
    return time.monotonic() - returned[0]


def test_the_final_report_waits_for_an_update_on_the_wire_one_request_timeout_at_most(
        api: FakeCloudReactor, caplog: pytest.LogCaptureFixture) -> None:
    """An update whose answer hangs: the final report waits for it at most
    --api-request-timeout, the update is not tried again, and the final report carries the
    values the server never confirmed; the caller waits for the report that long too (here
    longer than the final update timeout) and learns it was delivered."""
    from helpers.bounds import SLACK
    from helpers.fake_cloudreactor import Hang

    api.script("PATCH", None, Hang())
    params = _online(api, api_request_timeout=3, api_retry_delay=0,
                     api_final_update_timeout=0.5)
    wrapper = ProcWrapper(params=params, env_override=_bare_env())
    try:
        assert _call_with_one_status_update(wrapper, api) < 3 + SLACK
    finally:
        api.release_hangs()
    patches = _patches(api)
    assert [p["status"] for p in patches] == ["RUNNING", "SUCCEEDED"]
    assert patches[1]["success_count"] == 7
    assert "could not be delivered" not in caplog.text
    assert api.violations == []


def test_the_final_report_never_waits_for_an_update_between_retries(
        api: FakeCloudReactor) -> None:
    """An update that failed and waits for its retry: the final report goes at once,
    carrying its values, and the retry never comes (no RUNNING update after the final)."""
    from helpers.bounds import SLACK
    from helpers.fake_cloudreactor import Respond

    api.script("PATCH", None, Respond(503))
    wrapper = ProcWrapper(params=_online(api, api_retry_delay=60), env_override=_bare_env())
    assert _call_with_one_status_update(wrapper, api) < SLACK
    from pwsup.embedded import monitor as embedded_monitor

    assert embedded_monitor._current is not None
    embedded_monitor._current.close()  # every request the reporter made is recorded
    embedded_monitor._current = None
    patches = _patches(api)
    assert [p["status"] for p in patches] == ["RUNNING", "SUCCEEDED"]
    assert patches[1]["success_count"] == 7
    assert api.violations == []


def test_attaching_to_a_finished_execution_ends_at_once_saying_so(
        api: FakeCloudReactor, tmp_path: Path) -> None:
    """--task-execution-uuid naming an execution that is over: the server's 409 is final
    (not a concurrency conflict to retry until the conflict timeout, 1800 s for a service),
    so pwsup exits 75 at once without starting the command, and says what happened (D82)."""
    import subprocess

    from helpers.bounds import EXIT_TIMEOUT
    from helpers.runner import clean_env, pwsup_cmd

    uuid = api.create_execution("compat-task")["uuid"]
    api.set_status(uuid, "SUCCEEDED")
    marker = tmp_path / "started"
    result = subprocess.run(
        pwsup_cmd(["touch", str(marker)], "-n", "compat-task", "--api-base-url", api.base_url,
                  "--task-execution-uuid", uuid, "--service", "--max-concurrency", "1"),
        env=clean_env({"PROC_WRAPPER_API_KEY": api.api_key}), capture_output=True, text=True,
        timeout=EXIT_TIMEOUT, check=False)
    assert result.returncode == 75, result.stderr
    assert not marker.exists()
    assert f"Task Execution {uuid} has already finished or was stopped" in result.stderr
    assert "concurrency" not in result.stderr
    assert [r.method for r in api.requests] == ["PATCH"]
    assert api.execution(uuid)["status"] == "SUCCEEDED"
    assert api.violations == []


def test_update_status_returns_at_once_1_when_reported_3_when_not(
        api: FakeCloudReactor) -> None:
    """update_status never waits for the server (D83): 1 when the values will be sent, the
    second one held for the final report included; 3 when the call is not reported."""
    from helpers.fake_cloudreactor import Hang

    api.script("PATCH", None, Hang())  # the first update never gets its answer
    results: list[int] = []

    def work(w: ProcWrapper, data: Any, config: Any) -> str:
        results.append(w.update_status(success_count=1))
        results.append(w.update_status(success_count=2))
        return "done"

    wrapper = ProcWrapper(params=_online(api, api_request_timeout=1, api_retry_delay=0),
                          env_override=_bare_env())
    try:
        assert wrapper.managed_call(work) == "done"
    finally:
        api.release_hangs()
    offline = ProcWrapper(params=_offline_params(), env_override=_bare_env())
    assert offline.managed_call(lambda w, d, c: w.update_status(success_count=1)) == 3
    assert results == [1, 1]
    assert _patches(api)[-1]["success_count"] == 2


# -- input, result and output files through the settings, as proc_wrapper has them ----------


def test_exit_after_writing_variables_writes_the_files_and_calls_nothing(
        tmp_path: Path) -> None:
    """The output files are written (and kept), the function is not called, nothing is
    reported, and the call returns None."""
    out = tmp_path / "out.env"
    params = _offline_params(env_output_filename=str(out), exit_after_writing_variables=True)
    env = {**_bare_env(), "SOME_VALUE_FOR_PROC_WRAPPER_TO_RESOLVE": "PLAIN:xyz"}
    called: list[object] = []
    wrapper = ProcWrapper(params=params, env_override=env)
    assert wrapper.managed_call(lambda w, d, c: called.append(d)) is None
    assert called == []
    assert "SOME_VALUE='xyz'" in out.read_text().splitlines()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_the_input_settings_give_the_call_its_data(tmp_path: Path) -> None:
    """Without data, the call's data is the input the settings name — the variable
    --input-env-var-name, else the file --input-filename — parsed per
    --input-value-format or the file's name; --cleanup-input-file removes the file after."""
    def echo(w: ProcWrapper, data: Any, config: Any) -> Any:
        return data

    by_variable = _offline_params(input_env_var_name="THE_INPUT", input_value_format="json")
    env = {**_bare_env(), "THE_INPUT": '{"a": 7}'}
    assert ProcWrapper(params=by_variable, env_override=env).managed_call(echo) == {"a": 7}
    assert ProcWrapper(params=by_variable, env_override=env).managed_call(echo, "given") \
        == "given"
    input_file = tmp_path / "input.json"
    input_file.write_text('{"b": [1, 2]}')
    by_file = _offline_params(input_filename=str(input_file), cleanup_input_file=True)
    assert ProcWrapper(params=by_file, env_override=_bare_env()).managed_call(echo) == \
        {"b": [1, 2]}
    assert not input_file.exists()
    assert ProcWrapper(params=_offline_params(), env_override=_bare_env()).managed_call(
        echo) is None  # no input anywhere: None (D70)


def test_a_result_file_is_the_result_of_a_function_that_returns_none(
        api: FakeCloudReactor, tmp_path: Path) -> None:
    """A function that returns None and leaves its result in --result-filename: the file,
    parsed by its name, is the call's result and the execution's output_value, and it is
    removed; one that cannot be parsed fails the attempt (and is retried)."""
    from pwsup.embedded.calldata import CallDataError

    result_file = tmp_path / "result.json"

    def writes(w: ProcWrapper, data: Any, config: Any) -> None:
        result_file.write_text('{"rows": 3}' if w.failed_count else "{not json")

    wrapper = ProcWrapper(params=_online(api, result_filename=str(result_file),
                                         process_max_retries=1), env_override=_bare_env())
    assert wrapper.managed_call(writes) == {"rows": 3}
    assert not result_file.exists()
    final = _patches(api)[-1]
    assert final["status"] == "SUCCEEDED"
    assert final["output_value"] == {"rows": 3}
    assert _patches(api)[0]["failed_attempts"] == 1
    once = ProcWrapper(params=_online(api, result_filename=str(result_file)),
                       env_override=_bare_env())
    with pytest.raises(CallDataError, match=r"result\.json"):
        once.managed_call(lambda w, d, c: result_file.write_text("{not json") and None)
    assert _patches(api)[-1]["status"] == "FAILED"
    assert api.violations == []
