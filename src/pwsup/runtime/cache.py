"""`MetadataCache`: fetch once, refresh when due or asked, and keep what worked.

- The first `get()` detects; later calls return the same value until
  `params.runtime_metadata_refresh_interval` (seconds, > 0) has elapsed since the last fetch.
  Without an interval the metadata is fetched once (proc_wrapper: every fetcher's default).
- `refresh(force=True)` fetches now, whatever the interval. In ECS sidecar mode the caller
  polls it at its process check interval to see the main container's exit code: proc_wrapper
  only refreshed when an interval was configured, so by default it waited forever.
- The fetcher that worked is remembered and used alone afterwards (as proc_wrapper did), so
  refreshes do not re-run detection, and the CodeBuild role is asked from STS only once
  (proc_wrapper asked at every fetch).
- A refresh that fails keeps the last good metadata: a transient ECS agent hiccup must not
  turn a known ECS run into an "Unknown" one in the final report. Only while nothing was
  ever detected successfully does a refresh re-run detection.
- Failures are logged at WARNING once per streak: while polling a failing endpoint (every
  process check in sidecar mode), the repeats go to DEBUG until a fetch succeeds again.
- Thread-safe: fetches are serialised; `current` reads without waiting for one.
- The clock is injectable (monotonic seconds) so tests can step time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pwsup.runtime import generic
from pwsup.runtime.detect import DEFAULT_TIMEOUT, Detection, candidates, run

if TYPE_CHECKING:
    from pwsup.config.params import Params
    from pwsup.runtime.model import RuntimeMetadata

LOG = logging.getLogger("pwsup.runtime")


class MetadataCache:
    """Runtime metadata of one run, fetched lazily and refreshed as configured."""

    def __init__(self, params: Params, environ: Mapping[str, str], *,
                 lambda_context: object | None = None, timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._params = params
        self._environ = environ
        self._lambda_context = lambda_context
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._memo: dict[str, Any] = {}
        self._fetcher: str | None = None
        self._current: RuntimeMetadata | None = None
        self._fetched_at = 0.0
        self._generation = 0
        self._failing = False

    @property
    def current(self) -> RuntimeMetadata | None:
        """The last metadata fetched, without fetching (None before the first fetch)."""
        return self._current

    @property
    def generation(self) -> int:
        """Bumped whenever `current` is replaced by a new fetch's result.

        A caller that remembers the generation it last reported knows whether there is
        anything new to send (proc_wrapper's updates carried the metadata only when it had
        been fetched again since the last one).
        """
        return self._generation

    def get(self) -> RuntimeMetadata:
        """The metadata, fetched first if never fetched or if the refresh interval elapsed."""
        return self.refresh(force=False)

    def refresh(self, force: bool = False) -> RuntimeMetadata:
        """Fetch now if `force` or due, else return the cached metadata. Never raises."""
        with self._lock:
            current = self._current
            if current is not None and not force and not self._due():
                return current
            return self._fetch(current)

    def _due(self) -> bool:
        interval = self._params.runtime_metadata_refresh_interval
        if interval is None or interval <= 0:
            return False
        return self._clock() - self._fetched_at >= interval

    def _fetch(self, previous: RuntimeMetadata | None) -> RuntimeMetadata:
        detection = self._detect()
        self._fetched_at = self._clock()
        self._failing = detection.fetcher is None
        if detection.fetcher is None and previous is not None:
            return previous  # the last good metadata, or the same generic fallback
        if detection.fetcher is not None:
            self._fetcher = detection.fetcher
        self._current = detection.metadata
        self._generation += 1
        return detection.metadata

    def _detect(self) -> Detection:
        remembered = self._fetcher
        names = (remembered,) if remembered else candidates(self._params)
        forced = remembered is not None or self._params.execution_method_type is not None
        try:
            return run(self._params, self._environ, names, forced=forced,
                       lambda_context=self._lambda_context, timeout=self._timeout,
                       memo=self._memo,
                       level=logging.DEBUG if self._failing else logging.WARNING)
        except Exception as error:
            LOG.warning("runtime metadata detection failed (%s): sending generic runtime "
                        "metadata", type(error).__name__)
            return Detection(generic.metadata(), None)
