"""The environment the command receives: pwsup's own plus the documented additions.

The contract is proc_wrapper 6.0.2's, variable for variable and value for value for the
same settings (so tasks, and wrappers nested inside the command, keep working), except
where noted:

| variable | value |
|---|---|
| PROC_WRAPPER_OFFLINE_MODE | the --offline-mode setting (TRUE/FALSE), not whether reported |
| PROC_WRAPPER_TASK_EXECUTION_UUID | the execution's UUID, once the server created it |
| PROC_WRAPPER_TASK_NAME / _TASK_UUID | the Task, when known (unless --offline-mode) |
| PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS | the attempt time limit, -1 for none |
| PROC_WRAPPER_PROCESS_TERMINATION_GRACE_PERIOD_SECONDS | the grace period |
| PROC_WRAPPER_MAX_CONCURRENCY | the concurrency limit, -1 for none |
| PROC_WRAPPER_PREVENT_OFFLINE_EXECUTION | TRUE/FALSE |
| PROC_WRAPPER_DEPLOYMENT, _TASK_VERSION_NUMBER/_TEXT/_SIGNATURE | when set |
| PROC_WRAPPER_TASK_INSTANCE_METADATA | the instance metadata as JSON, when set |
| PROC_WRAPPER_ENV_OUTPUT_*, _CONFIG_OUTPUT_*, _INPUT_*, _RESULT_* | those settings, when set |
| PROC_WRAPPER_API_BASE_URL, the three _PROBABILITY values, API timeouts | unless --offline-mode |
| PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER | TRUE/FALSE, unless --offline-mode |
| _STATUS_UPDATE_{SOCKET_PORT,INTERVAL_SECONDS,MESSAGE_MAX_BYTES} | listener on, no --offline-mode |
| PROC_WRAPPER_STATUS_UPDATE_HOST | with the listener |
| PROC_WRAPPER_ROLLBAR_TIMEOUT, _RETRIES, _RETRY_DELAY_SECONDS | with a Rollbar token |
| TASK_CONFIG (--env-var-name-for-config) | the resolved configuration as JSON (`{}` if none) |
| PWSUP_RUN_COOKIE | the run's cookie, first in the environment (see `cookie_environment`) |

Differences on purpose (docs/differences.md): the API key and the Rollbar token are never
exported (D56: a command that needs them must be given them explicitly); an unset status
update interval is -1, which proc_wrapper and pwsup both read back as unset, where
proc_wrapper wrote the text `None`, which neither can read (D80).

PROC_WRAPPER_OFFLINE_MODE is the setting, as proc_wrapper exports it, because a wrapper
nested inside the command reads it as its own setting: an outer run left unreported for
want of an API key must not switch off a nested run that has one.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.config.params import Params

PREFIX = "PROC_WRAPPER_"
COOKIE_VARIABLE = "PWSUP_RUN_COOKIE"
"""Marks every process the command starts, so pwsup finds them all when the run ends, also
those that left its process group or its process tree (see `procs.cookie_holders`)."""


def _number(value: float | int | None) -> str:
    if value is None:
        return "-1"
    return str(int(value)) if float(value).is_integer() else str(value)


def _flag(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def cookie_environment(base: Mapping[str, str], cookie: str | None) -> dict[str, str]:
    """`base` with the run's cookie as its first variable: the scan for it reads only the
    start of each environment. Under an outer pwsup the outer run's cookie is kept beside
    ours, so the outer run still finds what this one starts."""
    if cookie is None:
        return dict(base)
    outer = base.get(COOKIE_VARIABLE)
    env = {COOKIE_VARIABLE: f"{cookie} {outer}" if outer else cookie}
    env.update((name, value) for name, value in base.items() if name != COOKIE_VARIABLE)
    return env


def _files(params: Params) -> dict[str, str | None]:
    """The file and input settings, under the names proc_wrapper exports them."""
    return {
        "ENV_OUTPUT_FILENAME": params.env_output_filename,
        "ENV_OUTPUT_FORMAT": params.env_output_format,
        "CONFIG_OUTPUT_FILENAME": params.config_output_filename,
        "CONFIG_OUTPUT_FORMAT": params.config_output_format,
        "INPUT_FILENAME": params.input_filename,
        "INPUT_VALUE_FORMAT": params.input_value_format,
        "INPUT_ENV_VAR_NAME": params.input_env_var_name,
        "RESULT_FILENAME": params.result_filename,
        "RESULT_VALUE_FORMAT": params.result_value_format,
        "TASK_INSTANCE_METADATA": None if not params.task_instance_metadata
        else _json(params.task_instance_metadata),
    }


def _api(params: Params) -> dict[str, str | None]:
    """The API settings a command may use to report on its own (never the key: D56), and
    the Task and the status listener's address, exported unless offline mode was asked for,
    as proc_wrapper does."""
    if params.offline_mode:
        return {}
    return {
        "TASK_NAME": params.task_name,
        "TASK_UUID": params.task_uuid,
        "API_BASE_URL": params.api_base_url,
        "API_MANAGED_PROBABILITY": str(float(params.api_managed_probability)),
        "API_FAILURE_REPORT_PROBABILITY": str(float(params.api_failure_report_probability)),
        "API_TIMEOUT_REPORT_PROBABILITY": str(float(params.api_timeout_report_probability)),
        "API_ERROR_TIMEOUT_SECONDS": _number(params.api_error_timeout),
        "API_RETRY_DELAY_SECONDS": _number(params.api_retry_delay),
        "API_RESUME_DELAY_SECONDS": _number(params.api_resume_delay),
        "API_REQUEST_TIMEOUT_SECONDS": _number(params.api_request_timeout),
        "ENABLE_STATUS_UPDATE_LISTENER": _flag(params.enable_status_update_listener),
        **_listener(params),
    }


def _listener(params: Params) -> dict[str, str | None]:
    """Where and how the command sends status updates, when the listener is on. (Its host
    is exported even with --offline-mode, by `build`, as proc_wrapper does.)"""
    if not params.enable_status_update_listener:
        return {}
    return {
        "STATUS_UPDATE_SOCKET_PORT": str(params.status_update_socket_port),
        "STATUS_UPDATE_INTERVAL_SECONDS": _number(params.status_update_interval),  # D80
        "STATUS_UPDATE_MESSAGE_MAX_BYTES": str(params.status_update_message_max_bytes),
    }


def _rollbar(params: Params) -> dict[str, str | None]:
    """Rollbar's settings with a token (the token itself is never exported: D56)."""
    if not params.rollbar_access_token:
        return {}
    return {"ROLLBAR_TIMEOUT": _number(params.rollbar_timeout),
            "ROLLBAR_RETRIES": str(params.rollbar_retries),
            "ROLLBAR_RETRY_DELAY_SECONDS": _number(params.rollbar_retry_delay)}


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def build(params: Params, base: Mapping[str, str], *, execution_uuid: str | None = None,
          config_json: str = "{}", cookie: str | None = None) -> dict[str, str]:
    env = cookie_environment(base, cookie)
    add = {
        "OFFLINE_MODE": _flag(params.offline_mode),
        "PROCESS_TIMEOUT_SECONDS": _number(params.attempt_timeout),
        "PROCESS_TERMINATION_GRACE_PERIOD_SECONDS":
            _number(params.process_termination_grace_period),
        "MAX_CONCURRENCY": _number(params.max_concurrency),
        "PREVENT_OFFLINE_EXECUTION": _flag(params.prevent_offline_execution),
        "TASK_EXECUTION_UUID": execution_uuid,
        "DEPLOYMENT": params.deployment,
        "TASK_VERSION_NUMBER": None if params.task_version_number is None
        else str(params.task_version_number),
        "TASK_VERSION_TEXT": params.task_version_text,
        "TASK_VERSION_SIGNATURE": params.task_version_signature,
        **_files(params), **_api(params), **_rollbar(params),
    }
    if params.enable_status_update_listener:
        add["STATUS_UPDATE_HOST"] = params.status_update_host
    for name, value in add.items():
        if value is not None:
            env[PREFIX + name] = value
    for secret in ("API_KEY", "ROLLBAR_ACCESS_TOKEN"):
        env.pop(PREFIX + secret, None)
        env.pop("PWSUP_" + secret, None)
    if params.env_var_name_for_config and params.env_var_name_for_config not in env:
        env[params.env_var_name_for_config] = config_json  # unless resolution set it
    return env
