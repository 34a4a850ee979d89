"""Error reports to Rollbar, sent from one background thread so no caller ever waits.

When it reports
    Only with a Rollbar access token (`--rollbar-access-token`). The reporter process wires
    these triggers; each one also logs the message itself, this module only delivers it:

    - an API request attempt that failed with a network error, a timeout or an HTTP status
      that is not retried (data: the request, and the response or the error);
    - retry exhaustion: pwsup stopped sending API requests after its retry deadline;
    - a final status that could not be delivered (the API server was not configured, was
      not responding properly, or never learnt that the run started), with the last failed
      request as data;
    - a run that could not start (the command could not be spawned, or setup failed before).

    As upstream, individual attempts answered 409 or 429/502/503/504 are not reported.

What it sends
    One item per `report()` (`rollbar_items.py` says what is in it and what never is):
    `POST <rollbar_endpoint>` with the token in the `X-Rollbar-Access-Token` header (never
    in the body).

Delivery
    `report()` builds the item in the caller's thread (pure computation, no I/O), puts it on
    a bounded queue and returns; it never blocks and never raises. A single daemon thread,
    started on the first report, sends items in order over one keep-alive session. Each
    item gets up to `1 + rollbar_retries` attempts, `rollbar_retry_delay` apart (no wait
    after the last), each limited by `rollbar_timeout` for connecting and for every read.
    Network errors and timeouts of any kind (upstream caught only some, and let a read
    timeout escape as an exception) and 429/5xx answers are retried; other answers below
    200 or from 300 up give up at once; any 2xx is success.

    An item that finally fails is logged at WARNING and the thread goes on with the next
    one: a Rollbar outage costs the items sent during it, not the rest of the run
    (upstream disabled Rollbar for good after one failed item). The one circuit breaker:
    401 or 403 means the token itself is rejected, so later items cannot succeed either;
    reporting is then switched off for the run with one WARNING. When the queue is full
    (`MAX_QUEUED`, e.g. during a long outage with many failing API attempts) new items are
    dropped, with one WARNING until the queue has drained.

    `flush(timeout)` waits, at most `timeout`, for everything queued to be delivered or
    given up, and says whether it was. `close()` drops what is still queued, interrupts a
    retry wait, and returns once the thread has ended or its timeout passed. An attempt
    already on the wire is not interrupted: it ends within `rollbar_timeout`, and the thread
    is a daemon, so it can never hold up the exit of the process.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping

from pwsup._version import __version__
from pwsup.supervisor.reporting.rollbar_items import (
    CONTEXT,
    MAX_STRING_CHARS,
    VALUE_KEYS,
    Item,
    ItemBuilder,
)
from pwsup.util.text import first_line

TYPE_CHECKING = False  # as in log.py: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    import requests

    from pwsup.config.params import Params
    from pwsup.util.log import Log

__all__ = ["CONTEXT", "MAX_QUEUED", "MAX_STRING_CHARS", "VALUE_KEYS", "RollbarReporter"]

MAX_QUEUED = 100
"""Items waiting to be sent; more are dropped (Rollbar down and many failing API attempts)."""
_AUTH_REJECTED = frozenset({401, 403})


class RollbarReporter:
    """Queues error reports and sends them to Rollbar from one daemon thread.

    `execution_uuid_getter` is called at each `report()` for the current Task Execution
    UUID (None before the server assigned one). `clock` gives the items' timestamps,
    `hostname` the `server.host` (default: this host's name). `include_values=True` keeps
    input/output values and log tails in `data` (they are removed by default).
    """

    def __init__(self, params: Params, log: Log, *,
                 execution_uuid_getter: Callable[[], str | None],
                 include_values: bool = False,
                 clock: Callable[[], float] = time.time,
                 hostname: str | None = None) -> None:
        self._token = params.rollbar_access_token or None
        self._endpoint = params.rollbar_endpoint
        self._attempts = 1 + max(0, params.rollbar_retries)
        self._retry_delay = max(0.0, params.rollbar_retry_delay)
        self._timeout = params.rollbar_timeout
        self._log = log
        self._items = ItemBuilder(params, log, execution_uuid_getter=execution_uuid_getter,
                                  include_values=include_values, clock=clock,
                                  hostname=hostname)

        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[Item] = collections.deque()
        self._pending = 0  # queued + the one being sent
        self._dropping = False
        self._closed = threading.Event()
        self._rejected = False
        self._thread: threading.Thread | None = None

    # ---- public API ---------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether reports are sent: a token is configured and Rollbar has not rejected it."""
        return self._token is not None and not self._rejected

    def report(self, message: str, data: Mapping[str, Any] | None = None) -> None:
        """Queue one item and return at once. Never blocks on I/O, never raises."""
        if not self.enabled or self._closed.is_set():
            return
        try:
            item = self._items.build(message, data)
            with self._cond:
                if self._closed.is_set() or self._rejected:
                    return
                first_drop = False
                if len(self._queue) >= MAX_QUEUED:
                    first_drop = not self._dropping
                    self._dropping = True  # until the queue is empty again
                else:
                    self._start_worker_locked()
                    self._queue.append(item)
                    self._pending += 1
                    self._cond.notify_all()
            if first_drop:
                self._log.warning(
                    f"Rollbar: {MAX_QUEUED} reports are waiting to be sent; dropping new "
                    f"ones until the queue drains (dropped: {item.summary!r})")
        except Exception as e:  # reporting an error must never cause one
            try:
                self._log.warning(f"Rollbar: could not queue a report: {type(e).__name__}: {e}")
            except Exception:
                pass

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until every queued item was sent or given up.

        True when nothing is left; False when the time ran out first."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 1.0) -> bool:
        """Stop: refuse new reports, drop queued ones, interrupt a retry wait, and wait up
        to `timeout` for the thread to end. Returns whether it has ended. Idempotent."""
        with self._cond:
            first = not self._closed.is_set()
            self._closed.set()
            dropped = len(self._queue)
            self._queue.clear()
            self._pending -= dropped
            busy = int(self._pending > 0)
            self._cond.notify_all()
            thread = self._thread
        if first and (dropped or busy):
            self._log.warning(f"Rollbar: closing with {dropped + busy} report(s) not sent")
        if thread is None:
            return True
        thread.join(max(0.0, timeout))
        return not thread.is_alive()

    # ---- sending (worker thread) ----------------------------------------------------

    def _start_worker_locked(self) -> None:
        if self._thread is None:
            thread = threading.Thread(target=self._run, name="pwsup-rollbar", daemon=True)
            thread.start()  # may raise (no threads left): then nothing was queued
            self._thread = thread

    def _next_item(self) -> Item | None:
        with self._cond:
            while not self._queue and not self._closed.is_set():
                self._cond.wait()
            if self._closed.is_set():
                return None
            item = self._queue.popleft()
            if not self._queue:
                self._dropping = False
            return item

    def _run(self) -> None:
        session: requests.Session | None = None
        try:
            while (item := self._next_item()) is not None:
                try:
                    if session is None:
                        import requests

                        session = requests.Session()
                    self._deliver(session, item)
                except Exception as e:  # the thread must outlive any single item
                    self._log.warning(f"Rollbar: report {item.summary!r} not sent: "
                                      f"{type(e).__name__}: {e}")
                finally:
                    with self._cond:
                        self._pending -= 1
                        self._cond.notify_all()
        finally:
            if session is not None:
                session.close()

    def _deliver(self, session: requests.Session, item: Item) -> None:
        import requests

        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"pwsup/{__version__}",
            "X-Rollbar-Access-Token": self._token or "",
        }
        reason = "not attempted"
        made = 0
        while made < self._attempts:
            if made and self._closed.wait(self._retry_delay):
                return  # close() already said how many reports were dropped
            made += 1
            retry = True
            try:
                response = session.post(self._endpoint, data=item.body, headers=headers,
                                        timeout=self._timeout)
            except requests.RequestException as e:
                reason = f"{type(e).__name__}: {first_line(e)}"
                retry = not isinstance(e, ValueError)  # invalid URL and the like
            else:
                status = response.status_code
                text = response.text
                response.close()
                if 200 <= status < 300:
                    self._log.debug(f"Rollbar: report {item.summary!r} sent")
                    return
                reason = f"HTTP {status}: {first_line(text)}"
                if status in _AUTH_REJECTED:
                    self._reject(reason)
                    return
                retry = status == 429 or status >= 500
            if not retry or self._closed.is_set():
                break
        self._log.warning(f"Rollbar: report {item.summary!r} not sent after {made} "
                          f"attempt(s): {reason}")

    def _reject(self, reason: str) -> None:
        with self._cond:
            self._rejected = True
            dropped = len(self._queue)
            self._queue.clear()
            self._pending -= dropped
            self._cond.notify_all()
        self._log.warning(f"Rollbar rejected the access token ({reason}); no more reports "
                          f"are sent in this run ({dropped + 1} report(s) not sent)")
