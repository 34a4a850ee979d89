"""The resolver: from settings and an environment to the command's environment and
configuration, with every failure accounted for.

One `resolve()`:

1. fetch the `--env` locations (dotenv unless detected) and merge them; then the given
   process environment is laid over them (it wins, as with proc_wrapper);
2. fetch the `--config` locations (JSON unless detected) and merge them over the initial
   configuration;
3. unless resolution is off (`--no-resolve-secrets`, or zero iterations or depth), run up
   to `max_config_resolution_iterations` passes over the environment then the
   configuration (`passes`), stopping when a pass changes nothing;
4. project the environment to strings (`projection`), and cross-link: the environment
   gets the configuration as JSON (`TASK_CONFIG`), the configuration gets the projected
   environment (`ENV`).

Failures: with fail-fast (the default) the first failure ends resolution and the
`Resolution` has `ok == False` and *empty* `env` and `config`, so a caller cannot start a
command with a half-built environment by mistake; it exits 78 instead. Without
fail-fast, failed names are left out (never set to their location string) and listed in
`failures`; the caller logs them and runs anyway.

A `Resolver` keeps its fetch cache and AWS clients between calls: calling `resolve()`
again (after a failed attempt, or when `config_ttl` expired) fetches only the entries
that went stale and re-runs everything else from the original inputs. It is meant to run
in a short-lived resolver process; `close()` (or `with`) releases its AWS clients.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pwsup.secrets import formats
from pwsup.secrets.accounting import Accounting, Failure, StopResolution
from pwsup.secrets.cache import Cache
from pwsup.secrets.passes import Naming, PassSettings, Walker
from pwsup.secrets.projection import project
from pwsup.secrets.providers import aws, registry
from pwsup.secrets.toplevel import fetch_and_merge
from pwsup.secrets.values import ValueSource

if TYPE_CHECKING:
    from types import TracebackType

    from pwsup.config.params import Params
    from pwsup.secrets.providers.base import Provider

logger = logging.getLogger("pwsup.secrets")

__all__ = ["Failure", "Resolution", "Resolver"]


@dataclass
class Resolution:
    """The outcome of one `Resolver.resolve()`.

    `env`: the command's environment (all strings). `config`: the resolved configuration.
    `failures`: what could not be resolved (empty when `ok`). `secret_values`: every string
    that came from a provider, to redact from logs. `fetches`: provider fetches made (cache
    misses), for logs and tests.
    """

    env: dict[str, str]
    config: dict[str, Any]
    failures: list[Failure] = field(default_factory=list)
    secret_values: set[str] = field(default_factory=set)
    fetches: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def __repr__(self) -> str:  # values are secrets: never in a repr
        return (f"Resolution(<{len(self.env)} variables>, <{len(self.config)} config keys>, "
                f"failures={self.failures!r})")


class _Working:
    """The environment and configuration being built (read by ENV and CONFIG)."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self.config: dict[str, Any] = {}


class Resolver:
    """Resolves the secrets of one run (see the module docstring)."""

    def __init__(self, params: Params, environ: Mapping[str, str], *,
                 initial_config: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 providers: Mapping[str, Provider] | None = None,
                 aws_client_hook: aws.ClientHook | None = None) -> None:
        """`environ`: the process environment to resolve (and to read AWS_REGION from).
        `providers`: replacements by provider code (tests, embedding).
        `aws_client_hook`: called with every boto3 client created."""
        self.params = params
        self.environ = dict(environ)
        self.initial_config = copy.deepcopy(dict(initial_config or {}))
        self._working = _Working()
        self._clients = aws.AwsClients(
            aws.configured_region(params.secrets_aws_region, self.environ),
            hook=aws_client_hook)
        self._cache = Cache(params.config_ttl, clock)
        self._source = ValueSource(
            registry.build(self._clients, lambda: self._working.env,
                           lambda: self._working.config, providers,
                           size_limit=params.config_size_limit),
            self._cache)

    # -- public -----------------------------------------------------------------------------
    def resolve(self) -> Resolution:
        """Fetch, merge and resolve; never raises for a secrets problem (see failures)."""
        accounting = Accounting(fail_fast=self.params.fail_fast_config_resolution)
        fetches_before = self._source.fetch_count
        self._working = _Working()
        try:
            self._fetch_top_level(accounting)
            if self._resolution_enabled():
                self._run_passes(accounting)
            env = self._project(accounting)
        except StopResolution:
            logger.debug("resolution stopped at the first failure (fail-fast)")
            return Resolution({}, {}, accounting.failures, accounting.secret_values,
                              self._source.fetch_count - fetches_before)
        config = self._working.config
        self._cross_link(env, config)
        return Resolution(env, config, accounting.failures, accounting.secret_values,
                          self._source.fetch_count - fetches_before)

    def close(self) -> None:
        """Release the AWS clients (the cache stays usable)."""
        self._clients.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- steps ------------------------------------------------------------------------------
    def _fetch_top_level(self, accounting: Accounting) -> None:
        p = self.params
        env = fetch_and_merge(p.env_locations, {}, kind="env", default_format=formats.DOTENV,
                              source=self._source, strategy=p.config_merge_strategy,
                              accounting=accounting)
        env.update(self.environ)  # the process environment beats env files
        self._working.env = env
        self._working.config = fetch_and_merge(
            p.config_locations, copy.deepcopy(self.initial_config), kind="config",
            default_format=formats.JSON, source=self._source,
            strategy=p.config_merge_strategy, accounting=accounting)

    def _resolution_enabled(self) -> bool:
        p = self.params
        return (p.resolve_secrets and p.max_config_resolution_iterations > 0
                and p.max_config_resolution_depth > 0)

    def _run_passes(self, accounting: Accounting) -> None:
        env_walker = Walker(self._settings(env=True), self._source, accounting)
        config_walker = Walker(self._settings(env=False), self._source, accounting)
        for number in range(1, self.params.max_config_resolution_iterations + 1):
            changed = env_walker.run_pass(self._working.env)
            changed |= config_walker.run_pass(self._working.config)
            logger.debug("resolution pass %d: %s", number, "changes" if changed else "no change")
            if not changed:
                break
        env_walker.finish(self._working.env)
        config_walker.finish(self._working.config)

    def _settings(self, *, env: bool) -> PassSettings:
        p = self.params
        naming = (Naming(p.resolved_env_var_name_prefix, p.resolved_env_var_name_suffix) if env
                  else Naming(p.resolved_config_property_name_prefix,
                              p.resolved_config_property_name_suffix))
        return PassSettings(
            naming=naming, max_depth=p.max_config_resolution_depth,
            keep_existing=env and not p.overwrite_env_during_resolution,
            strategy=p.config_merge_strategy, legacy_names=env and p.legacy_name_providers,
            log_values=p.log_secrets)

    def _project(self, accounting: Accounting) -> dict[str, str]:
        """The environment as strings, leaving out what no environment can hold."""
        env: dict[str, str] = {}
        for name, value in project(self._working.env).items():
            if not name or "=" in name or "\0" in name:
                accounting.fail(name or "(empty name)", None,
                                "not a valid environment variable name")
            elif "\0" in value:
                accounting.fail(name, None, "the value contains a NUL character")
            else:
                env[name] = value
        return env

    def _cross_link(self, env: dict[str, str], config: dict[str, Any]) -> None:
        env_name = self.params.env_var_name_for_config
        config_key = self.params.config_property_name_for_env
        if env_name:
            env[env_name] = json.dumps(config, default=str)
        if config_key:
            config[config_key] = {name: value for name, value in env.items()
                                  if name != env_name}
