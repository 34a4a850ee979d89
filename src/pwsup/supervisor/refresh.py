"""Fresh secrets before a retry: once --config-ttl has passed since they were resolved, a
resolver process resolves them again, and the retry starts with what it returns.

The resolver is a process of its own, polled by the loop like any other descriptor, so the
parent never waits on AWS; if it fails, the retry goes ahead with the previous values.
This module is loaded only for runs that resolved secrets at start.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.supervisor.resolver import ResolverProcess
    from pwsup.supervisor.state import RunState


class Refresh:
    """How to resolve secrets again before a retry once --config-ttl has passed."""

    def __init__(self, source: Mapping[str, str], resolved_at: float,
                 written: list[str]) -> None:
        self.source = source
        """The environment pwsup was given (resolution starts from it every time)."""
        self.resolved_at = resolved_at
        self.written = written
        """Output files written by resolvers, removed at exit."""


class SecretsRefresh:
    """Resolves the secrets again when they are stale, and puts the result in the run."""

    def __init__(self, run: RunState, refresh: Refresh) -> None:
        self.run = run
        self.refresh = refresh
        self.resolving: ResolverProcess | None = None

    def under_way(self) -> bool:
        """Whether fresh secrets are being resolved, starting that if they have gone stale."""
        if self.resolving is None:
            self._start_if_stale()
        return self.resolving is not None

    def _start_if_stale(self) -> None:
        ttl, refresh = self.run.params.config_ttl, self.refresh
        if ttl is None or time.monotonic() - refresh.resolved_at < ttl:
            return
        from pwsup.supervisor.resolver import ResolverProcess

        self.run.log.info("the secrets are older than --config-ttl: resolving them again")
        self.resolving = ResolverProcess(self.run.params, refresh.source)

    def read(self) -> bool:
        """Read what the resolver sent; True once it is done and its result is taken in."""
        process, refresh, log = self.resolving, self.refresh, self.run.log
        assert process is not None
        if not process.read():
            return False
        self.resolving = None
        try:
            resolved = process.result()
        except (RuntimeError, ValueError, KeyError) as e:
            log.error(f"resolving the secrets again failed ({e}); retrying with the "
                      "previous values")
        else:
            for failure in resolved.failures:
                log.error(f"could not resolve {failure}")
            if resolved.failures and self.run.params.fail_fast_config_resolution:
                log.error("retrying with the previous values")
            else:
                for secret in resolved.secrets:
                    log.add_secret(secret)
                self.run.environ = resolved.env
                refresh.written.extend(p for p in resolved.written if p not in refresh.written)
            refresh.resolved_at = time.monotonic()
        return True
