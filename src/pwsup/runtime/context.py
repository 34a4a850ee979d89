"""What every fetcher is given, and the small readers they share.

A fetcher is a pair of functions (`applies`, `fetch`) taking one `FetchContext`, so the
detection order, the cache and the tests can call any fetcher the same way. The
environment is passed in rather than read from `os.environ`, so tests (and embedded
callers) decide exactly what a fetcher sees.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pwsup.util.record import Record, field

if TYPE_CHECKING:
    from pwsup.config.params import Params
    from pwsup.runtime.http import MetadataHttp
    from pwsup.runtime.model import RuntimeMetadata


class FetchContext(Record, frozen=False):
    """The inputs of one fetch.

    `memo` survives between fetches of one `MetadataCache`: fetchers keep there what never
    changes during a run but is costly to learn (the CodeBuild role from STS, which
    proc_wrapper asked for at every fetch).
    """

    params: Params
    environ: Mapping[str, str]
    http: MetadataHttp
    lambda_context: object | None = None
    memo: dict[str, Any] = field(default_factory=dict)


class Fetcher(Record):
    """One way of learning runtime metadata.

    `applies` is a cheap check of the environment (no I/O); `fetch` may do I/O and raises on
    failure. `requirement` says what `applies` looks for, for the warning given when an
    execution method is forced but not found.
    """

    name: str
    applies: Callable[[FetchContext], bool]
    fetch: Callable[[FetchContext], RuntimeMetadata]
    requirement: str


def env_text(environ: Mapping[str, str], *names: str) -> str | None:
    """The first of the variables that is set and not blank, stripped."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def env_int(environ: Mapping[str, str], name: str) -> int | None:
    """An integer variable; a value that is not an integer counts as unset."""
    value = env_text(environ, name)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def host_name() -> str | None:
    """This machine's host name (the pod name in Kubernetes, the container id in Docker)."""
    try:
        return socket.gethostname() or None
    except OSError:
        return None
