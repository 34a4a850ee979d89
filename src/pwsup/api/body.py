"""The JSON bodies pwsup sends to the CloudReactor API: pure functions of Params and state.

Field names and encodings follow proc_wrapper 6.0.2, so a server built for it reads pwsup's
requests unchanged: durations in whole seconds, -1 where a limit is off, ISO-8601 UTC
timestamps, status names as strings.
One deliberate difference: an auto-created Task never carries a heartbeat interval the
server rejects (-1, or below 10 s) — it is left out, and the reason is logged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pwsup._version import __version__

if TYPE_CHECKING:
    from pwsup.config.params import Params

WRAPPER_FAMILY = "pwsup"
MIN_SERVER_HEARTBEAT = 10
"""The server rejects auto-created Tasks whose heartbeat interval is below this."""


def whole(seconds: float | None, none: int | None = -1) -> int | None:
    """Seconds as the whole number the API wants (rounded up), or `none` when unset."""
    return none if seconds is None else math.ceil(seconds)


def common_task_fields(p: Params, *, auto_create: bool) -> tuple[dict[str, Any], list[str]]:
    """Fields shared by the execution and the Task, and notes on what was left out."""
    fields: dict[str, Any] = {
        "is_service": p.service,
        "schedule": p.schedule or "",
        "api_managed_probability": p.api_managed_probability,
        "api_failure_report_probability": p.api_failure_report_probability,
        "api_timeout_report_probability": p.api_timeout_report_probability,
    }
    notes: list[str] = []
    heartbeat = whole(p.api_heartbeat_interval)
    if auto_create and (heartbeat is None or heartbeat < MIN_SERVER_HEARTBEAT):
        notes.append("the heartbeat interval is not sent with the auto-created Task: the "
                     f"server accepts only {MIN_SERVER_HEARTBEAT} s or more (got "
                     f"{'none' if p.api_heartbeat_interval is None else heartbeat})")
    else:
        fields["heartbeat_interval_seconds"] = heartbeat
    return fields, notes


def task_object(p: Params, metadata: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The `task` object of a creation request (auto-create props first, ours over them)."""
    auto = p.auto_create_task or bool(p.auto_create_task_props)
    task: dict[str, Any] = dict(p.auto_create_task_props or {})
    common, notes = common_task_fields(p, auto_create=auto)
    task.update(common)
    if p.task_uuid:
        task["uuid"] = p.task_uuid
    else:
        task["name"] = p.task_name
    passive = p.task_is_passive
    if passive is None:
        passive = auto and not p.force_task_active
    run_environment: dict[str, str] = {}
    if p.auto_create_task_run_environment_uuid:
        run_environment["uuid"] = p.auto_create_task_run_environment_uuid
    elif p.auto_create_task_run_environment_name or p.deployment:
        run_environment["name"] = (p.auto_create_task_run_environment_name
                                   or p.deployment or "")
    task.update({
        "max_concurrency": -1 if p.max_concurrency is None else p.max_concurrency,
        "was_auto_created": auto,
        "passive": passive,
        "run_environment": run_environment,
    })
    for key in ("execution_method_type", "infrastructure_type", "allocated_cpu_units",
                "allocated_memory_mb", "execution_method_capability_details",
                "infrastructure_settings"):
        if key not in task and metadata.get(key) is not None:
            task[key] = metadata[key]
    if p.execution_method_type:
        task["execution_method_type"] = p.execution_method_type
    return task, notes


def start_body(p: Params, *, started_at: str, command: list[str] | None, attach: bool,
               log_level: str, hostname: str | None = None,
               metadata: dict[str, Any] | None = None,
               task_metadata: dict[str, Any] | None = None,
               input_value: object = None,
               embedded: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The body of the start request (POST, or the attach PATCH), and notes to log.

    `metadata` is the runtime metadata's execution view, `task_metadata` its Task view."""
    body: dict[str, Any] = {"status": "RUNNING", "started_at": started_at,
                            "embedded_mode": embedded, **run_settings(p, log_level)}
    common, _ = common_task_fields(p, auto_create=False)
    body.update(common)
    if p.send_input_value and input_value is not None:
        body["input_value"] = input_value
    if p.build_task_execution_uuid:
        body["build"] = {"task_execution": {"uuid": p.build_task_execution_uuid}}
    if p.deployment_task_execution_uuid:
        body["deploy"] = {"task_execution": {"uuid": p.deployment_task_execution_uuid}}
    if command:
        body["process_command"] = " ".join(command)
    if p.send_hostname and hostname:
        body["hostname"] = hostname
    if p.task_instance_metadata is not None:
        body["other_instance_metadata"] = p.task_instance_metadata
    body.update(execution_metadata(p, metadata or {}))
    notes: list[str] = []
    if not attach:
        body["task"], notes = task_object(p, task_metadata or {})
    return body, notes


def run_settings(p: Params, log_level: str) -> dict[str, Any]:
    """The run's settings as the execution records them, so the server shows how it ran."""
    return {
        "task_version_number": p.task_version_number,
        "task_version_text": p.task_version_text,
        "task_version_signature": p.task_version_signature,
        "process_timeout_seconds": whole(p.attempt_timeout, None),
        "process_max_retries": -1 if p.process_max_retries is None else p.process_max_retries,
        "process_retry_delay_seconds": whole(p.process_retry_delay),
        "process_termination_grace_period_seconds": whole(p.process_termination_grace_period),
        "task_max_concurrency": -1 if p.max_concurrency is None else p.max_concurrency,
        "max_conflicting_age_seconds": whole(p.max_conflicting_age, None),
        "prevent_offline_execution": p.prevent_offline_execution,
        "wrapper_log_level": log_level,
        "wrapper_family": WRAPPER_FAMILY,
        "wrapper_version": __version__,
        "api_error_timeout_seconds": whole(p.api_error_timeout),
        "api_retry_delay_seconds": whole(p.api_retry_delay),
        "api_resume_delay_seconds": whole(p.api_resume_delay),
        "api_task_execution_creation_error_timeout_seconds":
            whole(p.api_task_execution_creation_error_timeout),
        "api_task_execution_creation_conflict_timeout_seconds":
            whole(p.api_task_execution_creation_conflict_timeout),
        "api_task_execution_creation_conflict_retry_delay_seconds":
            whole(p.api_task_execution_creation_conflict_retry_delay),
        "api_final_update_timeout_seconds": whole(p.api_final_update_timeout),
        "api_request_timeout_seconds": whole(p.api_request_timeout),
        "status_update_interval_seconds": whole(p.status_update_interval, None),
        "status_update_port": p.status_update_socket_port,
        "status_update_message_max_bytes": p.status_update_message_max_bytes,
        "num_log_lines_sent_on_failure": p.num_log_lines_sent_on_failure,
        "num_log_lines_sent_on_timeout": p.num_log_lines_sent_on_timeout,
        "num_log_lines_sent_on_success": p.num_log_lines_sent_on_success,
        "max_log_line_length": p.max_log_line_length,
        "merge_stdout_and_stderr_logs": p.merge_stdout_and_stderr_logs,
        "ignore_stdout": p.ignore_stdout,
        "ignore_stderr": p.ignore_stderr,
        "deployment": p.deployment,
    }


def execution_metadata(p: Params, metadata: dict[str, Any]) -> dict[str, Any]:
    """Runtime-metadata fields of an execution, with --execution-method-props merged in."""
    fields = {key: metadata[key] for key in (
        "execution_method_type", "infrastructure_type", "allocated_cpu_units",
        "allocated_memory_mb", "ip_v4_addresses", "infrastructure_settings")
        if metadata.get(key) is not None}
    details = dict(metadata.get("execution_method_details") or {})
    details.update(p.execution_method_props or {})
    if details:
        fields["execution_method_details"] = details
    if p.execution_method_type:
        fields["execution_method_type"] = p.execution_method_type
    return fields
