"""One HTTP attempt against the API server, as an `Outcome` — never an exception.

`requests` is imported here, in the reporter only. Each worker thread has its own
`requests.Session` (sessions are not thread-safe), so connections are kept alive between
heartbeats. Every attempt has separate connect and read timeouts; the total deadline of a
logical request is enforced by the caller, which stops waiting for an attempt that runs
past it.

An answer's body is read as a stream and at most MAX_BODY_BYTES of it (decompressed): a
larger one is an answer the client cannot use, as a malformed one would be, and it never
fills the reporter's memory.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import requests

from pwsup._version import __version__
from pwsup.api.policy import Outcome
from pwsup.util.text import first_line

if TYPE_CHECKING:
    from pwsup.config.params import Params

USER_AGENT = f"pwsup/{__version__}"
CONNECT_TIMEOUT_CAP = 10.0
"""Connecting never waits longer than this, whatever the read timeout."""
MAX_BODY_BYTES = 1024 * 1024
"""The most of an answer's body that is read (1 MiB; the server's answers are a few KiB)."""
ERROR_CHARS = 300
"""A network error is told in its first line, at most this long (requests' messages name
the pool, the URL and the cause, and can run on)."""


class ApiClient:
    def __init__(self, params: Params) -> None:
        self.base_url = params.api_base_url
        self._headers = {
            "Authorization": f"Bearer {params.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        read = params.api_request_timeout
        self._timeout = None if read is None else (min(read, CONNECT_TIMEOUT_CAP), read)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def send(self, method: str, path: str, body: dict[str, Any]) -> Outcome:
        """Make one attempt. Network errors and timeouts come back as Outcome.error."""
        try:
            response = self._session().request(
                method, self.base_url + path,
                data=None if method == "GET" else json.dumps(body), headers=self._headers,
                timeout=self._timeout, stream=True)
            with response:
                content = _read_capped(response)
        except requests.RequestException as e:
            return Outcome(None, error=f"{type(e).__name__}: {first_line(e, ERROR_CHARS)}")
        if content is None:
            return Outcome(response.status_code, body=None,
                           error=f"the answer's body is over {MAX_BODY_BYTES} bytes")
        return Outcome(response.status_code, body=_parse(content.decode("utf-8", "replace")),
                       retry_after=response.headers.get("Retry-After"))


def _read_capped(response: requests.Response) -> bytes | None:
    """The body, or None when it is over MAX_BODY_BYTES (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(text: str) -> object:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text
