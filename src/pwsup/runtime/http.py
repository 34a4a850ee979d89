"""HTTP to metadata endpoints: short timeouts, an overall time budget, no proxies.

- Every request gets `(timeout, timeout)` as its connect and read timeout, shortened to what
  is left of the fetch's budget, so a fetcher that makes dozens of requests (EC2) cannot
  add up to minutes. proc_wrapper used 60 s per ECS request, three times per run.
- Proxy and netrc settings of the environment are ignored (`trust_env = False`): metadata
  endpoints are link-local or loopback addresses that no proxy can reach.
- One `requests.Session` per fetch reuses the connection across requests and is closed at
  the end, so no socket outlives the fetch.
- `requests` is imported on first use: importing `pwsup.runtime` must stay cheap.
- Failures raise `MetadataError` naming the method, URL and exception type only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from pwsup.runtime.errors import MetadataError

if TYPE_CHECKING:
    import requests

Clock = Callable[[], float]


class Reply(NamedTuple):
    """The parts of an HTTP response fetchers use."""

    status: int
    text: str


class MetadataHttp:
    """A small HTTP client for metadata endpoints; use it as a context manager."""

    def __init__(self, timeout: float, *, budget: float | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._deadline = None if budget is None else clock() + budget
        self._session: requests.Session | None = None

    def __enter__(self) -> MetadataHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def request(self, method: str, url: str,
                headers: Mapping[str, str] | None = None) -> Reply:
        """Send one request and return its status and body, whatever the status."""
        timeout = self._request_timeout(method, url)
        session = self._open()
        try:
            with session.request(method, url, headers=dict(headers or {}),
                                 timeout=(timeout, timeout), allow_redirects=False) as response:
                return Reply(response.status_code, response.text)
        except Exception as error:
            raise MetadataError(f"{method} {url} failed: {type(error).__name__}") from None

    def get_json(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        """GET a JSON document; any status but 200 or a body that is not JSON is an error."""
        reply = self.request("GET", url, headers)
        if reply.status != 200:
            raise MetadataError(f"GET {url} answered HTTP {reply.status}")
        return parse_json(reply.text, url)

    def _request_timeout(self, method: str, url: str) -> float:
        if self._deadline is None:
            return self.timeout
        left = self._deadline - self._clock()
        if left <= 0:
            raise MetadataError(f"{method} {url} not sent: the metadata time budget is spent")
        return min(self.timeout, left)

    def _open(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.trust_env = False
        return self._session


def parse_json(text: str, source: str) -> Any:
    """Decode a JSON body, turning a decoding error into `MetadataError`."""
    try:
        return json.loads(text)
    except ValueError:
        raise MetadataError(f"{source} did not return JSON") from None
