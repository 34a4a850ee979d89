"""Building a validated `Params` from the command line and the environment.

`load()` is pure apart from reading the file system for `--work-dir` and for the paths
pwsup would write to (`_check_written_paths`): argv and an environment mapping in, a
`Loaded` out. It never stops at the first problem: every bad value, every conflict
between two spellings of the same variable and every contradiction between options is
collected, so one run of pwsup shows all of them (exit 78).
"""

from __future__ import annotations

import os

from pwsup.config import command as commands
from pwsup.config.params import Params, option_specs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from pwsup.config.options import Spec


class Loaded:
    """The outcome of loading: Params (unless there were errors), and what to tell the user."""

    def __init__(self, params: Params | None, *, argv: list[str] | None = None,
                 errors: list[str] | None = None, warnings: list[str] | None = None,
                 explicit: frozenset[str] = frozenset()) -> None:
        self.params = params
        self.argv = argv or []
        """The argv to exec, resolved from the command settings."""
        self.errors = errors or []
        self.warnings = warnings or []
        self.explicit = explicit
        """Names of the options that were set by the command line or the environment."""


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """Fast path: (options, command) when argv has no options at all, else None.

    `pwsup -- cmd ...` and `pwsup cmd ...` need no option parser, so argparse (and its
    import time) is skipped for them.
    """
    if not argv:
        return [], []
    if argv[0] == "--":
        return [], list(argv[1:])
    if not argv[0].startswith("-"):
        return [], list(argv)
    return None


def _cli_values(argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    fast = split_argv(argv)
    if fast is not None:
        return ({"command": fast[1]} if fast[1] else {}), []
    from pwsup.config.argv import UsageError, parse_cli

    try:
        values, unknown = parse_cli(argv)
    except UsageError as e:
        return {}, [f"command line: {e}"]
    command = values.get("command") or []
    if command and command[0] == "--":
        command = command[1:]
    values["command"] = command
    return values, [f"unknown option {token.split('=', 1)[0]!r} (see pwsup --help)"
                    for token in unknown]


def _parse_one(name: str, spec: Spec, raw: object) -> object:
    if spec.cli == "append" and isinstance(raw, list):
        items: list[str] = []
        for text in raw:
            parsed = spec.kind.parse(text)
            items.extend(parsed if isinstance(parsed, tuple) else [str(parsed)])
        return tuple(items)
    if name == "command":
        return tuple(raw) if isinstance(raw, list) else ()
    if isinstance(raw, bool):
        return raw
    return spec.kind.parse(str(raw))


def _env_value(spec: Spec, environ: Mapping[str, str], errors: list[str]) -> tuple[str, object]:
    """The parsed value of an option from the environment, or ("", None) when unset.

    An option may have several spellings (upstream's code name, its README name, PWSUP_*);
    if two of them are set to different values that is a contradiction, not a choice.
    """
    found: list[tuple[str, object]] = []
    for env_name in spec.env_names():
        text = environ.get(env_name)
        if text is None or text.strip() == "":
            continue
        try:
            found.append((env_name, spec.kind.parse(text)))
        except ValueError as e:
            errors.append(f"{env_name}: {e}")
    if not found:
        return "", None
    first_name, first_value = found[0]
    for other_name, other_value in found[1:]:
        if other_value != first_value:
            errors.append(f"{first_name} and {other_name} are both set, to different values; "
                          "set only one")
    return first_name, first_value


def env_values(environ: Mapping[str, str], errors: list[str]) -> dict[str, object]:
    """The options set in the environment (embedded mode layers them over code)."""
    found: dict[str, object] = {}
    for name, spec in option_specs():
        env_name, value = _env_value(spec, environ, errors)
        if env_name:
            found[name] = value
    return found


def _raw_values(
    argv: Sequence[str], environ: Mapping[str, str]
) -> tuple[dict[str, object], set[str], list[str]]:
    cli, errors = _cli_values(argv)
    values: dict[str, object] = {}
    explicit: set[str] = set()
    for name, spec in option_specs():
        if name in cli:
            try:
                values[name] = _parse_one(name, spec, cli[name])
                explicit.add(name)
            except ValueError as e:
                errors.append(f"{spec.label()}: {e}")
        env_name, env_value = _env_value(spec, environ, errors)
        if env_name:
            values[name] = env_value
            explicit.add(name)
    return values, explicit, errors


def derive(values: dict[str, object], explicit: set[str]) -> None:
    """Fill in the defaults that depend on other options (documented in the table)."""
    limited = bool(values.get("service")) and values.get("max_concurrency", 1) is not None
    if "api_heartbeat_interval" not in explicit:
        values["api_heartbeat_interval"] = 30.0 if limited else 300.0
    elif values.get("api_heartbeat_interval") == 0:
        values["api_heartbeat_interval"] = None
    if "api_task_execution_creation_conflict_timeout" not in explicit:
        values["api_task_execution_creation_conflict_timeout"] = 1800.0 if limited else 0.0
    if "api_task_execution_creation_conflict_retry_delay" not in explicit:
        values["api_task_execution_creation_conflict_retry_delay"] = 60.0 if limited else 120.0
    if "max_conflicting_age" not in explicit:
        heartbeat = values["api_heartbeat_interval"]
        values["max_conflicting_age"] = (
            heartbeat + 60.0 if limited and isinstance(heartbeat, float) else None)
    if "sidecar_container_mode" not in explicit:
        main, monitor = values.get("main_container_name"), values.get("monitor_container_name")
        values["sidecar_container_mode"] = bool(main and monitor and main != monitor)


def _check_command(p: Params, errors: list[str]) -> list[str]:
    if p.command and p.command_line is not None:
        errors.append("a command was given both as arguments and as --command-line / "
                      "PROC_WRAPPER_TASK_COMMAND; give only one")
        return []
    if not p.command and p.command_line is None:
        if not (p.sidecar_container_mode or p.exit_after_writing_variables):
            errors.append("no command given: put it after the options, e.g. "
                          "`pwsup -- python3 job.py`, or set PROC_WRAPPER_TASK_COMMAND")
        return []
    try:
        return commands.resolve(p.command, p.command_line, shell_mode=p.shell_mode,
                                strip_wrapping=p.strip_shell_wrapping)
    except commands.CommandError as e:
        errors.append(f"command: {e}")
        return []


def _check_api(p: Params, environ: Mapping[str, str], errors: list[str],
               warnings: list[str]) -> None:
    if p.offline_mode:
        if p.prevent_offline_execution:
            errors.append("--offline-mode and --prevent-offline-execution contradict each other")
        return
    if not p.api_key:
        if p.prevent_offline_execution and not needs_resolution(p, environ):
            errors.append("--prevent-offline-execution needs an API key (--api-key or "
                          "PROC_WRAPPER_API_KEY)")
        return
    problems: list[str] = []
    if not (p.task_name or p.task_uuid):
        problems.append("a Task name or UUID is needed to report (--task-name or --task-uuid)")
    if p.auto_create_task and not (p.auto_create_task_run_environment_name
                                   or p.auto_create_task_run_environment_uuid or p.deployment):
        problems.append("an auto-created Task needs a Run Environment "
                        "(--auto-create-task-run-environment-name/-uuid or --deployment)")
    if p.prevent_offline_execution and p.api_managed_probability < 1.0:
        problems.append("--prevent-offline-execution needs --api-managed-probability 1")
    if p.prevent_offline_execution:
        errors.extend(problems)
    else:
        warnings.extend(f"{problem}; the run goes on unreported" for problem in problems)


def _check_process(p: Params, errors: list[str], warnings: list[str]) -> None:
    if p.service and p.process_timeout is not None:
        warnings.append("--process-timeout is ignored for a service (--service)")
    if p.sidecar_container_mode and p.process_max_retries != 0:
        warnings.append("retries are ignored in ECS sidecar mode")
    if not (p.sidecar_container_mode or p.exit_after_writing_variables) and not os.path.isdir(
        p.work_dir
    ):
        errors.append(f"--work-dir: {p.work_dir!r} is not a directory")


def _check_written_paths(p: Params, environ: Mapping[str, str] | None,
                         errors: list[str]) -> None:
    """The paths pwsup writes to (and removes at exit) must be new or regular files.

    Writing replaces the file and the cleanup removes it: a device node (`/dev/full`), a
    FIFO, a socket, a directory or a symbolic link at such a path would be destroyed, so it
    is a configuration error, before anything is started or written. The input file counts
    only when pwsup writes it (an input value is known, `environ` given: wrapped mode);
    otherwise it is the command's to read, whatever it is."""
    from pwsup.config.outputs import output_paths
    from pwsup.config.values import input_text
    from pwsup.util.files import not_regular_kind

    for option, path in output_paths(p):
        kind = not_regular_kind(path)
        if kind is not None:
            errors.append(f"{option}: {path!r} is {kind}, not a regular file; pwsup writes "
                          "an output file only to a new path or over a regular file")
    if p.input_filename and environ is not None:
        kind = not_regular_kind(p.input_filename)
        if kind is not None and input_text(p, environ) is not None:
            errors.append(f"--input-filename: {p.input_filename!r} is {kind}, not a regular "
                          "file; pwsup writes the input value only to a new path or over a "
                          "regular file")


def needs_resolution(params: Params, environ: Mapping[str, str]) -> bool:
    """Whether this run has anything to fetch, resolve or write out."""
    if params.env_locations or params.config_locations:
        return True
    if (params.env_output_filename or params.env_output_format or params.config_output_filename
            or params.config_output_format):
        return True  # the resolved environment is written even when nothing needs resolving
    if not params.resolve_secrets:
        return False
    prefix, suffix = params.resolved_env_var_name_prefix, params.resolved_env_var_name_suffix
    return any(name.startswith(prefix) and name.endswith(suffix) and len(name) > len(suffix)
               for name in environ)


def validate_embedded(params: Params, environ: Mapping[str, str]) -> list[str]:
    """Errors of settings for a function call (embedded mode): no command, no work dir."""
    errors: list[str] = []
    if params.command or params.command_line:
        errors.append("a command makes no sense in embedded mode")
    if params.sidecar_container_mode:
        errors.append("ECS sidecar mode makes no sense in embedded mode")
    _check_api(params, environ, errors, [])
    _check_written_paths(params, None, errors)  # the input file is never written here
    return errors


def load(argv: Sequence[str], environ: Mapping[str, str]) -> Loaded:
    """Parse, derive and validate. `Loaded.params` is None when there are errors."""
    values, explicit, errors = _raw_values(argv, environ)
    derive(values, explicit)
    # Options whose value was bad keep their default here, so the checks below still run
    # and the user sees every problem at once.
    params = Params(**values)
    warnings: list[str] = []
    argv_to_run = _check_command(params, errors)
    _check_api(params, environ, errors, warnings)
    _check_process(params, errors, warnings)
    _check_written_paths(params, environ, errors)
    if errors:
        return Loaded(None, errors=errors, warnings=warnings, explicit=frozenset(explicit))
    return Loaded(params, argv=argv_to_run, warnings=warnings, explicit=frozenset(explicit))
