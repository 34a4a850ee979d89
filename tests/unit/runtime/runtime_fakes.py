"""Shared fakes for the runtime-metadata unit tests: fixture JSON, an in-memory HTTP client,
fetch contexts and a fake Lambda context. Integration tests use real HTTP servers instead."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pwsup.config.params import Params
from pwsup.runtime.context import FetchContext
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.http import MetadataHttp, Reply

FIXTURES = Path(__file__).resolve().parent / "fixtures"

Route = Reply | Callable[[Mapping[str, str]], Reply]


def fixture(name: str) -> Any:
    """A fixture JSON document, freshly parsed (tests may modify it)."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def json_reply(document: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(document))


class FakeHttp(MetadataHttp):
    """`MetadataHttp` answering from a route table; unknown URLs are 404, as IMDS does.

    A route may raise `MetadataError` (a network failure); `requests` records every call.
    """

    def __init__(self, routes: Mapping[tuple[str, str], Route] | None = None,
                 timeout: float = 1.0) -> None:
        super().__init__(timeout)
        self.routes = dict(routes or {})
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str,
                headers: Mapping[str, str] | None = None) -> Reply:
        headers = dict(headers or {})
        self.requests.append((method, url, headers))
        route = self.routes.get((method, url))
        if route is None:
            return Reply(404, "")
        return route(headers) if callable(route) else route

    def urls(self, method: str = "GET") -> list[str]:
        return [url for m, url, _ in self.requests if m == method]


def failing(message: str = "connection refused") -> Callable[[Mapping[str, str]], Reply]:
    def route(headers: Mapping[str, str]) -> Reply:
        raise MetadataError(message)

    return route


def context(environ: Mapping[str, str] | None = None, *, params: Params | None = None,
            http: MetadataHttp | None = None, lambda_context: object | None = None,
            memo: dict[str, Any] | None = None) -> FetchContext:
    return FetchContext(params or Params(), dict(environ or {}), http or FakeHttp(),
                        lambda_context=lambda_context, memo={} if memo is None else memo)


def lambda_context(**overrides: Any) -> SimpleNamespace:
    """An object shaped like the context the Python Lambda runtime passes to handlers."""
    values: dict[str, Any] = {
        "function_name": "resize-images",
        "function_version": "$LATEST",
        "invoked_function_arn":
            "arn:aws:lambda:eu-west-1:123456789012:function:resize-images:live",
        "memory_limit_in_mb": "1024",
        "aws_request_id": "3f1c2b9e-5d6a-4e8f-9a0b-1c2d3e4f5a6b",
        "log_group_name": "/aws/lambda/resize-images",
        "log_stream_name": "2026/11/28/[$LATEST]0123456789abcdef0123456789abcdef",
        "identity": SimpleNamespace(cognito_identity_id="eu-west-1:abcd-1234",
                                    cognito_identity_pool_id="eu-west-1:pool-5678"),
        "client_context": SimpleNamespace(
            client=SimpleNamespace(installation_id="inst-1", app_title="Gallery",
                                   app_version_name="2.1", app_version_code="21",
                                   app_package_name="com.example.gallery"),
            custom={}, env={}),
    }
    values.update(overrides)
    return SimpleNamespace(**values)
