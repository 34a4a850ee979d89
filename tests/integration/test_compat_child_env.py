"""The command's PROC_WRAPPER_* variables against what proc_wrapper 6.0.2 sets for the same
settings.

Each expected table is what upstream's code computes for the settings of its case
(`ProcWrapperParams.populate_env` plus `ProcWrapper.make_process_env`, commit 4446ce6), with
the settings made equal where pwsup's default differs (`--max-concurrency -1`, D35). The
only values that differ are deliberate and named: the API key is never exported (D56), and
an unset status update interval is `-1` where upstream wrote the text `None` (D80); on ECS,
the container variables upstream read from the task metadata are not added (D84).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.runner import clean_env, pwsup_cmd, python_cmd

PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"
SAME_SETTINGS = ["--max-concurrency", "-1"]
"""proc_wrapper ran with no concurrency limit whatever it documented (D35)."""
ABSENT = None

UPSTREAM_NO_KEY_WITH_LISTENER: dict[str, str | None] = {
    # `--enable-status-update-listener -n t`, no API key: upstream reports nothing either,
    # but its offline_mode setting is off, so it exports the setting and the API variables.
    "PROC_WRAPPER_OFFLINE_MODE": "FALSE",
    "PROC_WRAPPER_API_BASE_URL": "http://127.0.0.1:9",
    "PROC_WRAPPER_API_MANAGED_PROBABILITY": "1.0",
    "PROC_WRAPPER_API_FAILURE_REPORT_PROBABILITY": "1.0",
    "PROC_WRAPPER_API_TIMEOUT_REPORT_PROBABILITY": "1.0",
    "PROC_WRAPPER_API_ERROR_TIMEOUT_SECONDS": "300",
    "PROC_WRAPPER_API_REQUEST_TIMEOUT_SECONDS": "30",
    "PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER": "TRUE",
    "PROC_WRAPPER_STATUS_UPDATE_HOST": "127.0.0.1",
    "PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT": "2373",
    "PROC_WRAPPER_STATUS_UPDATE_INTERVAL_SECONDS": "-1",  # upstream: "None" (D80)
    "PROC_WRAPPER_STATUS_UPDATE_MESSAGE_MAX_BYTES": "65536",
    "PROC_WRAPPER_TASK_NAME": "t",
    "PROC_WRAPPER_TASK_EXECUTION_UUID": ABSENT,
    "PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS": "-1",
    "PROC_WRAPPER_PROCESS_TERMINATION_GRACE_PERIOD_SECONDS": "30",
    "PROC_WRAPPER_MAX_CONCURRENCY": "-1",
    "PROC_WRAPPER_PREVENT_OFFLINE_EXECUTION": "FALSE",
    "PROC_WRAPPER_API_KEY": ABSENT,  # upstream: "None" (D56: never exported)
}

UPSTREAM_OFFLINE_WITH_LISTENER: dict[str, str | None] = {
    # `--offline-mode --enable-status-update-listener -n t --task-version-text v1`: no API
    # variable, no Task, and of the listener only its host.
    "PROC_WRAPPER_OFFLINE_MODE": "TRUE",
    "PROC_WRAPPER_API_BASE_URL": ABSENT,
    "PROC_WRAPPER_API_REQUEST_TIMEOUT_SECONDS": ABSENT,
    "PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER": ABSENT,
    "PROC_WRAPPER_STATUS_UPDATE_HOST": "127.0.0.1",
    "PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT": ABSENT,
    "PROC_WRAPPER_STATUS_UPDATE_INTERVAL_SECONDS": ABSENT,
    "PROC_WRAPPER_STATUS_UPDATE_MESSAGE_MAX_BYTES": ABSENT,
    "PROC_WRAPPER_TASK_NAME": ABSENT,
    "PROC_WRAPPER_TASK_VERSION_TEXT": "v1",
    "PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS": "-1",
    "PROC_WRAPPER_MAX_CONCURRENCY": "-1",
    "PROC_WRAPPER_PREVENT_OFFLINE_EXECUTION": "FALSE",
}


def _child_env(*options: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(pwsup_cmd(python_cmd(PRINT_ENV), *options),
                            env=env or clean_env(), capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result
    child: dict[str, Any] = json.loads(result.stdout)
    return child


def _picked(child: dict[str, Any], expected: dict[str, str | None]) -> dict[str, str | None]:
    return {name: child.get(name) for name in expected}


@pytest.mark.parametrize(("options", "expected"), [
    (["--enable-status-update-listener", "-n", "t", "--api-base-url", "http://127.0.0.1:9"],
     UPSTREAM_NO_KEY_WITH_LISTENER),
    (["--offline-mode", "--enable-status-update-listener", "-n", "t",
      "--task-version-text", "v1"], UPSTREAM_OFFLINE_WITH_LISTENER),
], ids=["no-key", "offline-mode"])
def test_unreported_runs_export_what_proc_wrapper_exports(
        options: list[str], expected: dict[str, str | None]) -> None:
    """PROC_WRAPPER_OFFLINE_MODE is the --offline-mode setting, not whether the run is
    reported; the listener's port, interval and size go with the API settings (not with
    --offline-mode), its host whenever it is on; the Task only without --offline-mode."""
    child = _child_env(*options, *SAME_SETTINGS)
    assert _picked(child, expected) == expected


def test_a_reported_run_exports_what_proc_wrapper_exports() -> None:
    """Reported, with the listener on and an interval: the execution, the Task and every
    listener variable, each with upstream's value."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    with FakeCloudReactor() as api:
        api.create_task("env-task")
        child = _child_env(
            "-n", "env-task", "--api-base-url", api.base_url, "--enable-status-update-listener",
            "--status-update-interval", "5", "--status-update-socket-port", port,
            *SAME_SETTINGS, env=clean_env({"PROC_WRAPPER_API_KEY": api.api_key}))
        [uuid] = list(api.executions)
    expected = {
        "PROC_WRAPPER_OFFLINE_MODE": "FALSE",
        "PROC_WRAPPER_TASK_EXECUTION_UUID": uuid,
        "PROC_WRAPPER_TASK_NAME": "env-task",
        "PROC_WRAPPER_API_BASE_URL": api.base_url,
        "PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER": "TRUE",
        "PROC_WRAPPER_STATUS_UPDATE_HOST": "127.0.0.1",
        "PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT": port,
        "PROC_WRAPPER_STATUS_UPDATE_INTERVAL_SECONDS": "5",
        "PROC_WRAPPER_STATUS_UPDATE_MESSAGE_MAX_BYTES": "65536",
        "PROC_WRAPPER_MAX_CONCURRENCY": "-1",
        "PROC_WRAPPER_API_KEY": ABSENT,  # D56
    }
    assert _picked(child, expected) == expected


def test_a_nested_wrapper_reads_the_exported_variables_back() -> None:
    """What the command gets configures a wrapper nested inside it, as with proc_wrapper:
    the -1 interval reads back as unset (upstream's `None` is an error there: D80), and an
    outer run that is unreported for want of an API key leaves a nested run free to report
    (OFFLINE_MODE is FALSE, the setting)."""
    from pwsup.config.loader import load

    child = _child_env("--enable-status-update-listener", "-n", "t", *SAME_SETTINGS)
    nested = load(["--", "true"], child)
    assert nested.params is not None, nested.errors
    assert nested.params.status_update_interval is None
    assert nested.params.offline_mode is False
    upstream_text = dict(child, PROC_WRAPPER_STATUS_UPDATE_INTERVAL_SECONDS="None")
    assert load(["--", "true"], upstream_text).params is None


def test_on_ecs_no_container_variable_is_added() -> None:
    """D84: the ECS container variables pass through as pwsup has them, never read from the
    task metadata (here an endpoint nobody answers: pwsup does not even ask it)."""
    ecs = {"ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:9/v4/task",
           "PROC_WRAPPER_MAIN_CONTAINER_NAME": "app"}
    child = _child_env("-n", "t", env=clean_env(ecs))
    assert child["PROC_WRAPPER_MAIN_CONTAINER_NAME"] == "app"
    assert "PROC_WRAPPER_MONITOR_CONTAINER_NAME" not in child
    assert "PROC_WRAPPER_SIDECAR_CONTAINER_MODE" not in child
