"""Embedded mode through proc_wrapper's API: managed_call in-process and isolated, reported
to the fake CloudReactor server by the same reporter process as wrapped mode."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from helpers.embedded import bare_env, online_params, reported_to
from helpers.fake_cloudreactor import FakeCloudReactor
from pwsup.compat import ConfigurationError, ProcWrapper, ProcWrapperParams
from pwsup.embedded.monitor import Denied, EmbeddedMonitor


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with reported_to("embedded-task") as server:
        yield server


def offline_env() -> dict[str, str]:
    return bare_env()


def online(api: FakeCloudReactor, **settings: Any) -> ProcWrapper:
    return ProcWrapper(params=online_params(api, "embedded-task", **settings),
                       env_override=offline_env())


def test_offline_managed_call_returns_the_value_and_passes_config() -> None:
    """fun(wrapper, data, config) is called; its value comes back; no data is fine."""
    params = ProcWrapperParams(env=offline_env())
    params.initial_config = {"greeting": "hi"}
    wrapper = ProcWrapper(params=params, env_override=offline_env())
    assert wrapper.managed_call(lambda w, data, config: (data, config["greeting"])) == \
        (None, "hi")


def test_retries_then_the_last_exception() -> None:
    """Failures are retried process_max_retries times; the last exception propagates."""
    params = ProcWrapperParams(env=offline_env())
    params.process_max_retries = 2
    params.process_retry_delay = 0
    calls: list[int] = []

    def fail(wrapper: ProcWrapper, data: Any, config: Any) -> None:
        calls.append(1)
        raise ValueError(f"attempt {len(calls)}")

    with pytest.raises(ValueError, match="attempt 3"):
        ProcWrapper(params=params, env_override=offline_env()).managed_call(fail)
    assert len(calls) == 3


def test_isolated_call_survives_a_crash_of_the_function() -> None:
    """isolated=True runs each attempt in a worker: a hard crash is an exception here."""
    from pwsup.errors import WorkerCrashed

    params = ProcWrapperParams(env=offline_env())
    wrapper = ProcWrapper(params=params, env_override=offline_env(), isolated=True)
    assert wrapper.managed_call(lambda w, d, c: os.getpid()) != os.getpid()
    with pytest.raises(WorkerCrashed):
        wrapper.managed_call(lambda w, d, c: os._exit(5))


def test_invalid_settings_list_every_error() -> None:
    """Bad settings fail before the call, all listed."""
    params = ProcWrapperParams(env=offline_env())
    params.process_timeout = "soon"
    params.prevent_offline_execution = True
    params.offline_mode = True
    with pytest.raises(ConfigurationError) as info:
        ProcWrapper(params=params, env_override=offline_env())
    assert len(info.value.errors) == 2


def test_reported_call_creates_heartbeats_status_and_final_output(
    api: FakeCloudReactor,
) -> None:
    """Creation, heartbeats while the function runs, update_status values, output_value."""
    wrapper = online(api, api_heartbeat_interval=0.2)

    def work(w: ProcWrapper, data: Any, config: Any) -> dict[str, int]:
        assert w.update_status(success_count=4, last_status_message="half") == 1
        api.wait_for(lambda r: r.method == "PATCH" and (r.json or {}).get("success_count") == 4,
                     timeout=30)  # an event, with a deadline a busy machine cannot reach
        return {"total": data["n"] * 2}

    assert wrapper.managed_call(work, {"n": 21}) == {"total": 42}
    bodies = [r.json for r in api.requests if r.json is not None]
    assert bodies[0]["embedded_mode"] is True
    final = bodies[-1]
    assert final["status"] == "SUCCEEDED"
    assert final["output_value"] == {"total": 42}
    assert "exit_code" not in final
    assert api.violations == []


def test_reported_failures_with_retries_and_reuse_of_the_reporter(
    api: FakeCloudReactor,
) -> None:
    """Failed attempts are reported; the final FAILED arrives; a second call reuses the
    same reporter process and makes a second execution."""
    wrapper = online(api, process_max_retries=1)
    with pytest.raises(RuntimeError):
        wrapper.managed_call(lambda w, d, c: (_ for _ in ()).throw(RuntimeError("no")))
    from pwsup.embedded import monitor as embedded_monitor

    monitor = embedded_monitor._current
    assert isinstance(monitor, EmbeddedMonitor)
    first_pid = monitor.link.pid
    assert wrapper.managed_call(lambda w, d, c: "ok") == "ok"
    assert embedded_monitor._current is monitor
    assert monitor.link.pid == first_pid
    statuses = [r.json.get("status") for r in api.requests if r.json is not None]
    assert statuses == ["RUNNING", "RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]
    failed = next(r.json for r in api.requests if r.json and r.json.get("status") == "FAILED")
    assert failed["failed_attempts"] == 2
    assert len(api.executions) == 2
    assert api.violations == []


def test_update_status_from_an_isolated_worker_reaches_the_server(
    api: FakeCloudReactor,
) -> None:
    """In isolated mode update_status runs in the worker; the value travels worker → caller
    → reporter → server, and the function's heartbeat-carried value arrives."""
    params = ProcWrapperParams(env=offline_env())
    params.task_name = "embedded-task"
    params.api_base_url = api.base_url
    params.api_key = api.api_key
    params.api_heartbeat_interval = 0.2
    wrapper = ProcWrapper(params=params, env_override=offline_env(), isolated=True)

    def work(w: ProcWrapper, data: Any, config: Any) -> int:
        w.update_status(error_count=2, last_status_message="from the worker")
        return os.getpid()  # (the fake server's records live in the caller, not here)

    assert wrapper.managed_call(work) != os.getpid()
    carrying = [r.json for r in api.requests if (r.json or {}).get("error_count") == 2]
    assert carrying, "the worker's status never reached the server"
    assert carrying[0]["last_status_message"] == "from the worker"
    assert api.violations == []


def test_send_input_value_sends_the_calls_data(api: FakeCloudReactor) -> None:
    """With send_input_value, the call's data goes with the start as input_value."""
    wrapper = online(api, send_input_value=True)
    assert wrapper.managed_call(lambda w, data, c: data["n"], {"n": 7}) == 7
    start = next(r.json for r in api.requests if r.method == "POST")
    assert start["input_value"] == {"n": 7}
    assert api.violations == []


def test_status_goes_at_once_first_then_with_the_next_update_never_twice(
    api: FakeCloudReactor,
) -> None:
    """As proc_wrapper: the first update_status goes at once (no heartbeat is near: 300 s),
    a later one rides with the next update (here the final report); a value the server
    already has is not sent again in the final report."""
    wrapper = online(api)

    def work(w: ProcWrapper, data: Any, config: Any) -> str:
        assert w.update_status(success_count=1) == 1
        api.wait_for(lambda r: r.method == "PATCH" and (r.json or {}).get("success_count") == 1,
                     timeout=30)
        w.update_status(error_count=3)
        return "done"

    assert wrapper.managed_call(work) == "done"
    patches = [r.json for r in api.requests if r.method == "PATCH" and r.json is not None]
    assert [p["status"] for p in patches] == ["RUNNING", "SUCCEEDED"]
    assert patches[0]["success_count"] == 1
    assert "error_count" not in patches[0]
    assert patches[1]["error_count"] == 3
    assert "success_count" not in patches[1]
    assert api.violations == []


def test_extra_status_props_and_last_app_heartbeat_at_in_proc_wrappers_shape(
    api: FakeCloudReactor,
) -> None:
    """extra_status_props become top-level keys of the update; one named like a field of
    the report is dropped; a datetime last_app_heartbeat_at is sent as ISO 8601."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    wrapper = online(api)

    def work(w: ProcWrapper, data: Any, config: Any) -> str:
        w.update_status(extra_status_props={"extra": "yo", "rows": {"n": 2},
                                            "status": "SUCCEEDED", "exit_code": 0},
                        last_app_heartbeat_at=at)
        api.wait_for(lambda r: r.method == "PATCH" and (r.json or {}).get("extra") == "yo",
                     timeout=30)
        raise RuntimeError("the call fails")

    with pytest.raises(RuntimeError):
        wrapper.managed_call(work)
    update = next(r.json for r in api.requests if (r.json or {}).get("extra") == "yo")
    assert update["status"] == "RUNNING"
    assert "exit_code" not in update
    assert update["rows"] == {"n": 2}
    assert "other_runtime_metadata" not in update
    assert datetime.fromisoformat(update["last_app_heartbeat_at"]) == at
    final = [r.json for r in api.requests if r.json is not None][-1]
    assert final["status"] == "FAILED"
    assert api.violations == []


def test_a_garbage_collected_wrapper_never_reports_aborted(api: FakeCloudReactor) -> None:
    """A ProcWrapper that goes away (del, gc) after a call, or without one, reports nothing
    by itself: the server records no ABORTED, even once the reporter has ended."""
    import gc

    from pwsup.embedded import monitor as embedded_monitor

    wrapper = online(api)
    assert wrapper.managed_call(lambda w, d, c: "ok") == "ok"
    idle = online(api)
    del wrapper, idle
    gc.collect()
    current = embedded_monitor._current
    assert current is not None
    current.close()  # the reporter ends and is reaped: every request it made is recorded
    embedded_monitor._current = None
    statuses = [(r.json or {}).get("status") for r in api.requests]
    assert "ABORTED" not in statuses
    assert statuses[-1] == "SUCCEEDED"


def test_a_lambda_handler_run_twice_with_one_input_makes_one_execution(
    api: FakeCloudReactor,
) -> None:
    """The Task Execution UUID in the input is the execution reported: a handler that runs
    twice with the same event (a retried invocation) creates no second execution; once the
    execution has finished, the server refuses the second run, which does not call the
    function."""
    uuid = api.create_execution("embedded-task")["uuid"]
    event = {"cloudreactor_context": {"proc_wrapper_params": {"task_execution": {"uuid": uuid}}},
             "n": 5}
    calls: list[str | None] = []

    def handler(event: dict[str, Any], context: object) -> Any:
        def work(w: ProcWrapper, data: dict[str, Any], config: Any) -> int:
            calls.append(w.task_execution_uuid)
            return int(data["n"])

        return online(api).managed_call(work, event)

    assert handler(event, None) == 5
    with pytest.raises(Denied):
        handler(event, None)
    assert calls == [uuid]
    assert [r for r in api.requests if r.method == "POST"] == []
    assert list(api.executions) == [uuid]
    assert api.execution(uuid)["status"] == "SUCCEEDED"
    assert {r.path.split("?")[0] for r in api.requests} == {
        f"/api/v1/task_executions/{uuid}/"}
    assert api.violations == []


class _LambdaContext:
    """What AWS Lambda hands a handler, as far as runtime metadata reads it."""

    function_name = "export-fn"
    function_version = "7"
    invoked_function_arn = "arn:aws:lambda:us-east-2:123456789012:function:export-fn"
    memory_limit_in_mb = 1024
    aws_request_id = "request-1"
    log_group_name = "group"
    log_stream_name = "stream"


def test_lambda_runtime_metadata_carries_the_allocated_memory(api: FakeCloudReactor) -> None:
    """The call's environment (env_override) is where Lambda is detected, and the function's
    memory size reaches the start request, at the top and in its task."""
    env = {**offline_env(), "LAMBDA_TASK_ROOT": "/var/task", "AWS_REGION": "us-east-2",
           "AWS_LAMBDA_FUNCTION_NAME": "export-fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "4096"}
    params = ProcWrapperParams(env=env)
    params.task_name = "embedded-task"
    params.api_base_url = api.base_url
    params.api_key = api.api_key
    wrapper = ProcWrapper(params=params, env_override=env, runtime_context=_LambdaContext())
    assert wrapper.managed_call(lambda w, d, c: "ok") == "ok"
    start = next(r.json for r in api.requests if r.method == "POST" and r.json)
    assert start["allocated_memory_mb"] == 4096
    assert start["execution_method_type"] == "AWS Lambda"
    assert start["task"]["allocated_memory_mb"] == 4096
    assert api.violations == []


def test_the_logging_handler_feeds_the_log_tail_and_an_empty_tail_is_not_sent(
    api: FakeCloudReactor,
) -> None:
    """Lines logged through get_embedded_logging_handler() or debug_output() make the
    failure's log tail; a wrapper that logged nothing sends no tail at all."""
    import logging

    wrapper = online(api, num_log_lines_sent_on_failure=5, num_log_lines_sent_on_success=5)
    logger = logging.getLogger("embedded-tail-test")
    logger.addHandler(wrapper.get_embedded_logging_handler())
    logger.setLevel(logging.INFO)

    def fails(w: ProcWrapper, data: Any, config: Any) -> None:
        logger.info("working on it")
        w.debug_output("about to fail")
        raise RuntimeError("no")

    try:
        with pytest.raises(RuntimeError):
            wrapper.managed_call(fails)
        final = [r.json for r in api.requests if r.json and r.json.get("status") == "FAILED"]
        assert final, [r.json for r in api.requests]
        tail = json.dumps(final[-1])
        assert "working on it" in tail
        assert "about to fail" in tail
        api.clear_records()
        quiet = online(api, num_log_lines_sent_on_failure=5, num_log_lines_sent_on_success=5)
        assert quiet.managed_call(lambda w, d, c: "quiet") == "quiet"
        succeeded = [r.json for r in api.requests
                     if r.json and r.json.get("status") == "SUCCEEDED"]
        assert succeeded
        assert not any("log" in key for key in succeeded[-1]), succeeded[-1]
    finally:
        logger.handlers.clear()
