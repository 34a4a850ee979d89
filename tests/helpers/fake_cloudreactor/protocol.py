"""What the fake knows of the CloudReactor protocol as data: endpoints, API-key access
levels, status names, the fields of an execution and how the server stores them, and the
type of every field the wrapper may send.

Kept apart from the code that uses it so that a rule of the real server reads as one line
of a table, not as a branch somewhere in the request handling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

TASK_EXECUTIONS_PATH: Final = "/api/v1/task_executions/"
"""The collection path: POST here creates an execution."""
TASK_EXECUTION_PATH: Final = "/api/v1/task_executions/*"
"""A glob matching any single execution's path (PATCH), for `script()`/`always()`."""

DEFAULT_API_KEY: Final = "fake-developer-key-0123456789abcdef01234"
"""The key configured when `api_keys` is not given (Developer level): 40 characters like
the server's keys."""

ACCESS_LEVELS: Final[Mapping[str, int]] = {
    "observer": 1, "task": 50, "support": 100, "developer": 500, "admin": 1000}
"""Group access levels of the server's API keys: reporting on an execution needs Task level,
auto-creating a task needs Developer level."""
TASK_LEVEL: Final = ACCESS_LEVELS["task"]
DEVELOPER_LEVEL: Final = ACCESS_LEVELS["developer"]

STATUSES: Final = (
    "RUNNING", "SUCCEEDED", "FAILED", "TERMINATED_AFTER_TIME_OUT", "MARKED_DONE",
    "EXITED_AFTER_MARKED_DONE", "STOPPING", "STOPPED", "ABANDONED", "MANUALLY_STARTED",
    "ABORTED")
"""The server's execution status names, exchanged as strings."""
STOP_REASONS: Final = (
    "MANUAL", "MAX_EXECUTION_TIME_EXCEEDED", "MISSING_HEARTBEAT", "FAILED_TO_START",
    "WORKFLOW_EXECUTION_STOPPED", "WORKFLOW_EXECUTION_RETRIED",
    "WORKFLOW_EXECUTION_TIMED_OUT")
FINAL_CHECKED: Final = frozenset({"SUCCEEDED", "FAILED", "TERMINATED_AFTER_TIME_OUT", "ABORTED"})
"""Final statuses whose transition the server checks: it refuses one once the execution
has ended with another status, so a late or repeated report cannot rewrite how it ended."""

EXECUTION_FIELDS: Final = (
    "url", "uuid", "dashboard_url", "task", "auto_created_task_properties",
    "task_version_number", "task_version_text", "task_version_signature", "commit_url",
    "other_instance_metadata", "hostname", "environment_variables_overrides",
    "execution_method_type", "execution_method_details", "status", "started_by", "started_at",
    "finished_at", "marked_done_by", "marked_done_at", "marked_outdated_at", "killed_by",
    "kill_started_at", "kill_finished_at", "kill_error_code", "stop_reason", "last_heartbeat_at",
    "last_app_heartbeat_at", "failed_attempts", "timed_out_attempts", "exit_code",
    "error_details", "last_status_message", "error_count", "skipped_count", "expected_count",
    "success_count", "other_runtime_metadata", "current_cpu_units", "mean_cpu_units",
    "max_cpu_units", "current_memory_mb", "mean_memory_mb", "max_memory_mb", "wrapper_version",
    "wrapper_log_level", "deployment", "is_service", "task_max_concurrency",
    "max_conflicting_age_seconds", "schedule", "heartbeat_interval_seconds",
    "workflow_task_instance_execution", "api_base_url", "debug_log_tail", "error_log_tail",
    "embedded_mode", "input_value", "output_value", "created_at", "updated_at", "build", "deploy",
    # the "configuration" fields
    "infrastructure_type", "infrastructure_settings", "process_command", "allocated_cpu_units",
    "allocated_memory_mb", "prevent_offline_execution", "process_timeout_seconds",
    "process_max_retries", "process_retry_delay_seconds",
    "process_termination_grace_period_seconds", "api_retry_delay_seconds",
    "api_resume_delay_seconds", "api_error_timeout_seconds",
    "api_task_execution_creation_error_timeout_seconds",
    "api_task_execution_creation_conflict_timeout_seconds",
    "api_task_execution_creation_conflict_retry_delay_seconds",
    "api_final_update_timeout_seconds", "api_request_timeout_seconds",
    "status_update_interval_seconds", "status_update_port", "status_update_message_max_bytes",
    "num_log_lines_sent_on_failure", "num_log_lines_sent_on_timeout",
    "num_log_lines_sent_on_success", "max_log_line_length", "merge_stdout_and_stderr_logs",
    "ignore_stdout", "ignore_stderr", "managed_probability", "failure_report_probability",
    "timeout_report_probability", "other_metadata")
"""Every field of the server's execution serializer, in its order: the JSON of a stored
execution has exactly these keys."""
SERVER_OWNED: Final = frozenset({
    "url", "uuid", "dashboard_url", "task", "auto_created_task_properties", "started_by",
    "api_base_url", "created_at", "updated_at"})
"""Fields the server fills itself; values a client sends for them are ignored."""
WRITE_ONCE: Final = frozenset({
    "started_at", "started_by", "finished_at", "kill_started_at", "kill_finished_at",
    "kill_error_code", "killed_by", "marked_done_by", "marked_done_at", "marked_outdated_at"})
"""Fields that keep their first non-null value: a retried or late update cannot move the
recorded start, end or kill of an execution."""
DEEP_MERGED: Final = frozenset({
    "other_runtime_metadata", "execution_method_details", "infrastructure_settings"})
TRIMMED: Final = frozenset({"debug_log_tail", "error_log_tail", "last_status_message"})
"""Text fields DRF stores with surrounding whitespace trimmed (observed: the trailing newline
of `debug_log_tail` is lost)."""
DATETIME_FIELDS: Final = frozenset({
    "started_at", "finished_at", "last_heartbeat_at", "last_app_heartbeat_at",
    "marked_done_at", "marked_outdated_at", "kill_started_at", "kill_finished_at"})

# Field kinds for the protocol checker: what the wrapper may send in a start or update body.
INT, BOOL, NUMBER, STR, DICT, STR_LIST, DATETIME, ANY = (
    "int", "bool", "number", "str", "dict", "str_list", "datetime", "any")
BODY_FIELD_KINDS: Final[Mapping[str, str]] = {
    **dict.fromkeys((
        "task_version_number", "process_timeout_seconds", "process_max_retries",
        "process_retry_delay_seconds", "task_max_concurrency", "max_conflicting_age_seconds",
        "process_termination_grace_period_seconds", "api_error_timeout_seconds",
        "api_retry_delay_seconds", "api_resume_delay_seconds",
        "api_task_execution_creation_error_timeout_seconds",
        "api_task_execution_creation_conflict_timeout_seconds",
        "api_task_execution_creation_conflict_retry_delay_seconds",
        "api_final_update_timeout_seconds", "api_request_timeout_seconds",
        "status_update_interval_seconds", "status_update_port",
        "status_update_message_max_bytes", "num_log_lines_sent_on_failure",
        "num_log_lines_sent_on_timeout", "num_log_lines_sent_on_success", "max_log_line_length",
        "heartbeat_interval_seconds", "success_count", "error_count", "skipped_count",
        "expected_count", "failed_attempts", "timed_out_attempts", "exit_code", "pid"), INT),
    **dict.fromkeys((
        "embedded_mode", "prevent_offline_execution", "merge_stdout_and_stderr_logs",
        "ignore_stdout", "ignore_stderr", "is_service"), BOOL),
    **dict.fromkeys((
        "api_managed_probability", "api_failure_report_probability",
        "api_timeout_report_probability", "allocated_cpu_units", "allocated_memory_mb"),
        NUMBER),
    **dict.fromkeys((
        "task_version_text", "task_version_signature", "wrapper_log_level", "wrapper_family",
        "wrapper_version", "schedule", "process_command", "hostname", "execution_method_type",
        "infrastructure_type", "last_status_message", "debug_log_tail", "error_log_tail"), STR),
    **dict.fromkeys((
        "other_instance_metadata", "execution_method_details", "infrastructure_settings",
        "other_runtime_metadata"), DICT),
    **dict.fromkeys(("started_at", "finished_at", "last_heartbeat_at",
                     "last_app_heartbeat_at"), DATETIME),
    "ip_v4_addresses": STR_LIST,
    "input_value": ANY,
    "output_value": ANY,
}
TASK_FIELD_KINDS: Final[Mapping[str, str]] = {
    **dict.fromkeys(("name", "schedule", "execution_method_type", "infrastructure_type"), STR),
    **dict.fromkeys(("was_auto_created", "passive", "is_service"), BOOL),
    **dict.fromkeys(("max_concurrency", "heartbeat_interval_seconds"), INT),
    **dict.fromkeys((
        "api_managed_probability", "api_failure_report_probability",
        "api_timeout_report_probability", "allocated_cpu_units", "allocated_memory_mb"),
        NUMBER),
    **dict.fromkeys(("execution_method_capability_details", "infrastructure_settings"), DICT),
    "ip_v4_addresses": STR_LIST,
}
TASK_IGNORED: Final = frozenset({
    "api_managed_probability", "api_failure_report_probability",
    "api_timeout_report_probability", "run_environment", "uuid", "url"})
"""Task-object keys not stored on the Task as sent: the probabilities' names differ from the
server's fields (so the server ignores them), and the run environment and identity are
resolved separately."""
TASK_DEFAULTS: Final[Mapping[str, Any]] = {
    "max_heartbeat_lateness_before_alert_seconds": 120,
    "max_heartbeat_lateness_before_abandonment_seconds": 600,
    "notification_event_severity_on_missing_heartbeat": 400,
    "max_age_seconds": None, "enabled": True, "capabilities": [],
    "managed_probability": None, "failure_report_probability": None,
    "timeout_report_probability": None,
}

UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
COLLECTION_RE: Final = re.compile(r"/api/v1/task_executions/?")
DETAIL_RE: Final = re.compile(r"/api/v1/task_executions/([^/]+)/?")
