"""How proc_wrapper's settings objects and configuration map onto pwsup's options.

`ProcWrapperParams` takes settings as attributes (some under proc_wrapper's spellings), a
configuration may carry them under `proc_wrapper_params` (with nested `task`,
`task_execution` and `rollbar` objects), and a call's input may name the Task Execution to
report. This module turns each of those into option values, parsed as the option's kind
would parse them, so the embedded front door checks them with the same code as the
command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pwsup.config.params import option_specs

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.config.options import Spec

SPECS: dict[str, Spec] = dict(option_specs())
SUB_OBJECTS = {
    "task": {"name": "task_name", "uuid": "task_uuid", "was_auto_created": "auto_create_task",
             "passive": "task_is_passive", "other_metadata": "task_instance_metadata"},
    "task_execution": {"uuid": "task_execution_uuid", "version_number": "task_version_number",
                       "version_text": "task_version_text",
                       "version_signature": "task_version_signature"},
    "rollbar": {"access_token": "rollbar_access_token", "retries": "rollbar_retries",
                "retry_delay": "rollbar_retry_delay", "timeout": "rollbar_timeout"},
}
"""Nested objects of `proc_wrapper_params`: their keys, and the options they set."""
ALIASES = {"enable_status_listener": "enable_status_update_listener"}
"""proc_wrapper's README spelling of a setting, and pwsup's option."""


def coerce(spec: Spec, value: Any) -> Any:
    """A value set in code or in the configuration, as the option's kind would parse it."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return spec.kind.parse(str(value))


def coerced(layer: Mapping[str, Any], errors: list[str]) -> dict[str, Any]:
    """Each value of `layer` coerced; a value that does not parse is an error, named."""
    values: dict[str, Any] = {}
    for name, value in layer.items():
        try:
            values[name] = coerce(SPECS[name], value)
        except ValueError as e:
            errors.append(f"{name}: {e}")
    return values


def config_overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    """Options from the configuration's `proc_wrapper_params` key, where proc_wrapper reads
    them too, so a configuration written for it keeps working; its `task`,
    `task_execution` and `rollbar` objects hold options under their nested names."""
    raw = config.get("proc_wrapper_params")
    if not isinstance(raw, dict):
        return {}
    found: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SUB_OBJECTS and isinstance(value, dict):
            for sub_key, name in SUB_OBJECTS[key].items():
                if sub_key in value:
                    found[name] = value[sub_key]
            environment = value.get("run_environment") if key == "task" else None
            if isinstance(environment, dict):
                for sub_key in ("name", "uuid"):
                    if sub_key in environment:
                        found[f"auto_create_task_run_environment_{sub_key}"] = \
                            environment[sub_key]
        elif isinstance(key, str) and (name := ALIASES.get(key, key)) in SPECS:
            found[name] = value
    return found


def execution_uuid_from_input(value: object) -> str | None:
    """`cloudreactor_context.proc_wrapper_params.task_execution.uuid` of a dict input."""
    for key in ("cloudreactor_context", "proc_wrapper_params", "task_execution", "uuid"):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) and value else None
