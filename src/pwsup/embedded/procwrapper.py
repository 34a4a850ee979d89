"""proc_wrapper's Python API under its own names: migrating is changing an import.

    from pwsup.compat import ProcWrapper, ProcWrapperParams   # was: from proc_wrapper import ...

    def handler(event, context):
        params = ProcWrapperParams()
        params.task_name = "nightly-export"
        wrapper = ProcWrapper(params=params, runtime_context=context)
        return wrapper.managed_call(export, event)   # calls export(wrapper, event, config)

Settings, lowest to highest precedence: the defaults, attributes set on
`ProcWrapperParams`, `PROC_WRAPPER_*` environment variables, then the `proc_wrapper_params`
key of the resolved configuration (as proc_wrapper documents). Values are checked once,
with every error listed (`ConfigurationError`), before the function is called.

`managed_call` runs the function in the caller's process, like proc_wrapper; with
`ProcWrapper(..., isolated=True)` each attempt runs in a forked worker (`run_isolated`),
so a crash, a hang (with `process_timeout`) or a leak cannot take the caller down.
Reporting uses the same reporter process as wrapped mode (see `pwsup.embedded.monitor`).
The input, result and output-file settings act as in proc_wrapper (`pwsup.embedded.calldata`).

Fixed on purpose (docs/differences.md, "Embedded mode"): `managed_call(fn)` without data
works; `env_override` really is the environment; the build uuid is not the deploy uuid; the
log tail is each call's own.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pwsup._version import __version__
from pwsup.api.body import WRAPPER_FAMILY
from pwsup.config.loader import derive, env_values, needs_resolution, validate_embedded
from pwsup.config.params import Params
from pwsup.embedded.logtail import LogTails
from pwsup.embedded.settings import (
    ALIASES,
    SPECS,
    coerced,
    config_overrides,
    execution_uuid_from_input,
)
from pwsup.errors import PwsupError
from pwsup.status import DEFAULT_PORT as DEFAULT_STATUS_UPDATE_PORT
from pwsup.status import StatusUpdater

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pwsup.embedded.monitor import EmbeddedMonitor

__all__ = ["DEFAULT_STATUS_UPDATE_PORT", "ConfigurationError", "ProcWrapper",
           "ProcWrapperParams", "StatusUpdater"]

logger = logging.getLogger("pwsup.compat")
_UNSET: Any = object()
# Fields pwsup sets itself: an extra status property named like one never changes the outcome.
_REPORT_FIELDS = frozenset({"status", "finished_at", "exit_code", "failed_attempts", "pid",
                            "timed_out_attempts", "output_value", "stop_reason", "uuid", "task",
                            "debug_log_tail", "error_log_tail", "last_app_heartbeat_at"})


class ConfigurationError(PwsupError, ValueError):
    """The settings are invalid; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ProcWrapperParams:
    """proc_wrapper's settings object: an attribute per option, plus `initial_config`.

    Attributes start at their defaults; the ones you set take precedence over the defaults
    (and the environment, then the configuration, take precedence over them)."""

    _explicit: set[str]
    embedded_mode: bool
    override_from_env: bool
    env: Mapping[str, str] | None
    initial_config: dict[str, Any]

    def __init__(self, embedded_mode: bool = True, override_from_env: bool = True,
                 env: Mapping[str, str] | None = None) -> None:
        object.__setattr__(self, "_explicit", set())
        for name, spec in SPECS.items():
            object.__setattr__(self, name, spec.default)
        object.__setattr__(self, "embedded_mode", embedded_mode)
        object.__setattr__(self, "override_from_env", override_from_env)
        object.__setattr__(self, "env", env)
        object.__setattr__(self, "initial_config", {})

    def __setattr__(self, name: str, value: Any) -> None:
        name = ALIASES.get(name, name)
        self._explicit.add(name)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:  # every option is an attribute (set in __init__)
        raise AttributeError(f"ProcWrapperParams has no setting {name!r}")

    def explicit(self) -> dict[str, Any]:
        """The options set in code."""
        return {name: getattr(self, name) for name in self._explicit if name in SPECS}


def build_params(wrapper_params: ProcWrapperParams, environ: Mapping[str, str],
                 config: Mapping[str, Any], input_value: object = None) -> Params:
    """Merge code, environment and configuration into validated Params."""
    errors: list[str] = []
    values = coerced(wrapper_params.explicit(), errors)
    if wrapper_params.override_from_env:
        values.update(env_values(environ, errors))
    values.update(coerced(config_overrides(config), errors))
    uuid = execution_uuid_from_input(input_value)
    if uuid:
        values["task_execution_uuid"] = uuid
    explicit = set(values)
    derive(values, explicit)
    params = Params(**values)
    errors += validate_embedded(params, environ)
    if errors:
        raise ConfigurationError(errors)
    return params


def _has_locations(config: Mapping[str, Any], params: Params) -> bool:
    """Whether the initial configuration holds anything to resolve."""
    if params.config_locations:
        return True
    suffix = params.resolved_config_property_name_suffix
    return bool(params.resolve_secrets and suffix and suffix in json.dumps(config, default=str))


class ProcWrapper:
    """Runs a function under supervision and reports it, like proc_wrapper's ProcWrapper."""

    WRAPPER_FAMILY = WRAPPER_FAMILY
    VERSION = __version__
    STATUS_RUNNING = "RUNNING"
    STATUS_SUCCEEDED = "SUCCEEDED"
    STATUS_FAILED = "FAILED"
    STATUS_TERMINATED_AFTER_TIME_OUT = "TERMINATED_AFTER_TIME_OUT"
    STATUS_MARKED_DONE = "MARKED_DONE"
    STATUS_EXITED_AFTER_MARKED_DONE = "EXITED_AFTER_MARKED_DONE"
    STATUS_ABORTED = "ABORTED"

    def __init__(self, params: ProcWrapperParams | None = None,
                 runtime_metadata_fetcher: object = None, config_resolver: object = None,
                 env_override: Mapping[str, str] | None = None,
                 override_params_from_env: bool = True, runtime_context: object = None,
                 input_value: object = _UNSET, override_params_from_input: bool = True,
                 override_params_from_config: bool | None = None, *,
                 isolated: bool = False) -> None:
        del runtime_metadata_fetcher, config_resolver  # replaced by pwsup's own machinery
        self.environ: dict[str, str] = dict(os.environ if env_override is None else env_override)
        self.wrapper_params = params or ProcWrapperParams(env=self.environ)
        if not override_params_from_env:
            object.__setattr__(self.wrapper_params, "override_from_env", False)
        self.runtime_context = runtime_context
        self.input_value = input_value
        self.override_params_from_input = override_params_from_input
        self.use_config = True if override_params_from_config is None \
            else override_params_from_config
        self.isolated = isolated
        self.config: dict[str, Any] = dict(self.wrapper_params.initial_config)
        self.params = build_params(self.wrapper_params, self.environ,
                                   self.config if self.use_config else {})
        self._reflect(self.params)
        self.monitor: EmbeddedMonitor | None = None
        self.tails = LogTails()
        # proc_wrapper's public counters, read by callers (between attempts, for example)
        self.attempt_count = 0
        self.failed_count = 0
        self.timeout_count = 0
        self.timed_out = False
        self.task_execution_uuid: str | None = self.params.task_execution_uuid
        self.resolved_env: dict[str, str] = self.environ

    def _reflect(self, params: Params) -> None:
        """Show the settings in effect on the caller's ProcWrapperParams, as proc_wrapper
        does; values set in code stay the ones set in code."""
        for name in SPECS:
            object.__setattr__(self.wrapper_params, name, getattr(params, name))

    # -- the call -----------------------------------------------------------------------------

    def managed_call(self, fun: Callable[..., Any], data: Any = None) -> Any:
        """Call `fun(wrapper, data, config)` with retries, reporting each run."""
        if not callable(fun):
            raise TypeError("managed_call needs a callable")
        if data is None and self.input_value is not _UNSET:
            data = self.input_value
        params, config, written = self._prepare(data)
        from pwsup.embedded import calldata, resolving

        if params.exit_after_writing_variables:  # the files are what the caller wanted
            resolving.keep_outputs(written)
            return None
        try:
            if data is None and self.input_value is _UNSET:
                data = calldata.input_from_settings(params, self.resolved_env)
            return self._call(fun, data, params, config)
        finally:
            resolving.remove_outputs(written)
            calldata.remove_input_file(params)
            self.tails.clear()  # the tail is this call's: the next call reports its own lines

    def _call(self, fun: Callable[..., Any], data: Any, params: Params,
              config: dict[str, Any]) -> Any:
        self.params, self.config = params, config
        self._reflect(params)
        self.attempt_count = self.failed_count = 0
        self.task_execution_uuid = params.task_execution_uuid
        self.monitor = self._start_monitor(params, data)
        while True:
            self.attempt_count += 1
            try:
                result = self._attempt(fun, data, config)
            except Exception:
                failures = self.failed_count = self.failed_count + 1
                if params.max_attempts is not None and failures >= params.max_attempts:
                    self._finish("FAILED", failures)
                    raise
                if self.monitor is not None:
                    self.monitor.attempt_failed(failures)
                logger.warning("attempt %d failed; retrying in %g s", failures,
                               params.process_retry_delay, exc_info=True)
                time.sleep(params.process_retry_delay)
            else:
                output = json.loads(json.dumps(result, default=str)) if result is not None \
                    else None
                # the server has the failures from the RUNNING updates, as proc_wrapper sends
                self._finish("SUCCEEDED", 0, {"output_value": output} if output is not None else {})
                return result

    def get_embedded_logging_handler(self) -> logging.Handler:
        """A logging handler whose records become the call's log tail in the final report
        (the error tail when `merge_stdout_and_stderr_logs` is off)."""
        return self.tails.handler(self.params)

    def debug_output(self, msg: str) -> None:
        """Add a line to the call's debug log tail."""
        self.tails.add(self.params, msg)

    def make_process_env(self) -> dict[str, str]:
        """The environment a command started by the function should get: the resolved
        environment plus the `PROC_WRAPPER_*` variables wrapped mode gives its command."""
        from pwsup.config.childenv import build

        return build(self.params, self.resolved_env, execution_uuid=self.task_execution_uuid)

    def _prepare(self, data: Any) -> tuple[Params, dict[str, Any], list[str]]:
        """Resolve (in a child), then settle the settings: the params, the function's
        `config` (with the resolved environment under `ENV`), the output files written."""
        config = dict(self.wrapper_params.initial_config)
        environ = self.environ
        first = build_params(self.wrapper_params, environ, config)
        written: list[str] = []
        if needs_resolution(first, environ) or _has_locations(config, first):
            from pwsup.embedded import resolving

            resolved = resolving.resolve(first, environ, config)
            if resolved.failures and first.fail_fast_config_resolution:
                raise ConfigurationError([f"could not resolve {f}" for f in resolved.failures])
            environ, config = resolved.env, resolved.config
            written = resolving.write_outputs(first, resolved)
        elif first.config_property_name_for_env:
            config[first.config_property_name_for_env] = dict(environ)
        self.resolved_env = environ
        source = data if self.input_value is _UNSET else self.input_value
        params = build_params(self.wrapper_params, environ, config if self.use_config else {},
                              source if self.override_params_from_input else None)
        return params, config, written

    def _start_monitor(self, params: Params, data: Any) -> EmbeddedMonitor | None:
        if not params.online:
            return None
        from pwsup.config.log import make_log
        from pwsup.embedded.monitor import EmbeddedMonitor

        monitor = EmbeddedMonitor.for_params(params, make_log(params), self.runtime_context,
                                             self.environ)
        sent = json.loads(json.dumps(data, default=str)) if params.send_input_value else None
        uuid = monitor.begin(sent)
        if uuid is None:
            return None
        self.task_execution_uuid = uuid
        return monitor

    def _attempt(self, fun: Callable[..., Any], data: Any, config: dict[str, Any]) -> Any:
        """One call of `fun`; a None result is read from the result file, if one is set."""
        if not self.isolated:
            result = fun(self, data, config)
        else:
            from pwsup.embedded.isolated import run_isolated

            result = run_isolated(fun, self, data, config, timeout=self.params.process_timeout,
                                  grace=self.params.process_termination_grace_period,
                                  on_status=self._forward_status)
        if result is None and self.params.result_filename:
            from pwsup.embedded.calldata import result_from_file

            result = result_from_file(self.params)
        return result

    def _finish(self, status: str, failures: int, extra: dict[str, Any] | None = None) -> None:
        monitor, self.monitor = self.monitor, None
        extra = {**(extra or {}), **self.tails.report(self.params, status)}
        if monitor is not None and not monitor.finish(status, failed_attempts=failures,
                                                      extra=extra):
            logger.warning("the final status of the call could not be delivered")

    # -- status -------------------------------------------------------------------------------

    def update_status(self, success_count: int | None = None, error_count: int | None = None,
                      skipped_count: int | None = None, expected_count: int | None = None,
                      last_status_message: str | None = None,
                      extra_status_props: Mapping[str, Any] | None = None,
                      last_app_heartbeat_at: datetime | str | None = None) -> int:
        """Report progress of the running call. Returns 1 when handed to the reporter (or to
        the caller, from an isolated worker), 3 when there is nobody to send it to."""
        fields: dict[str, Any] = {}
        for key, value in (("success_count", success_count), ("error_count", error_count),
                           ("skipped_count", skipped_count), ("expected_count", expected_count)):
            if value is not None:
                fields[key] = int(value)
        if last_status_message is not None:
            fields["last_status_message"] = last_status_message
        for key, value in (extra_status_props or {}).items():
            if key in _REPORT_FIELDS:  # the report's own: a status value never replaces them
                logger.warning("update_status: extra_status_props key %r is dropped", key)
            else:
                fields[str(key)] = value  # top-level keys, where proc_wrapper puts them
        from pwsup.util.timefmt import utc_now

        at = last_app_heartbeat_at
        if at is not None and not isinstance(at, str):  # a datetime, as proc_wrapper takes
            at = at.isoformat() if at.tzinfo else at.replace(tzinfo=timezone.utc).isoformat()
        fields["last_app_heartbeat_at"] = at or utc_now()
        from pwsup.embedded.isolated import update_status as send_from_worker

        if send_from_worker(**fields):
            return 1
        if self.monitor is None:
            return 3
        self._forward_status(fields)
        return 1

    def _forward_status(self, fields: dict[str, Any]) -> None:
        if self.monitor is not None:
            self.monitor.status(fields)

