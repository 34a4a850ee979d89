"""The EC2 instance metadata service, version 2 (session tokens only).

IMDSv2: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` returns a
token; every `GET` carries it in `X-aws-ec2-metadata-token`. IMDSv1 (tokenless GETs) is
not used: instances increasingly disable it, and a token failure is a clear "not on EC2".

The address is botocore's: `AWS_EC2_METADATA_SERVICE_ENDPOINT` if set, else the IPv6
address when `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` is "IPv6", else 169.254.169.254.
Tests point the variable at a fake server.

A 404 means "this instance has no such item" (no IAM role, no spot action, tags not
exposed...) and reads as None; any other failure raises `MetadataError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pwsup.runtime.context import env_text
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.http import MetadataHttp, parse_json

DEFAULT_ENDPOINT = "http://169.254.169.254"
DEFAULT_IPV6_ENDPOINT = "http://[fd00:ec2::254]"
TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TOKEN_TTL_SECONDS = 300
"""Short: a token is only used for the few requests of one fetch."""


def endpoint(environ: Mapping[str, str]) -> str:
    """The IMDS base URL, as botocore chooses it."""
    configured = env_text(environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT")
    if configured:
        return configured.rstrip("/")
    mode = env_text(environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") or ""
    return DEFAULT_IPV6_ENDPOINT if mode.lower() == "ipv6" else DEFAULT_ENDPOINT


class Imds:
    """An IMDSv2 session: `connect()` once, then read items relative to `/latest/`."""

    def __init__(self, http: MetadataHttp, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token: str | None = None

    def connect(self) -> None:
        """Get a session token; fails when there is no IMDS (not on EC2)."""
        reply = self._http.request("PUT", self._base + TOKEN_PATH,
                                   {TOKEN_TTL_HEADER: str(TOKEN_TTL_SECONDS)})
        if reply.status != 200 or not reply.text.strip():
            raise MetadataError(f"IMDS token request answered HTTP {reply.status}")
        self._token = reply.text.strip()

    def text(self, path: str) -> str | None:
        """The item at `/latest/<path>`, or None when the instance has none (404)."""
        if self._token is None:
            raise MetadataError("IMDS session not connected")
        url = f"{self._base}/latest/{path}"
        reply = self._http.request("GET", url, {TOKEN_HEADER: self._token})
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise MetadataError(f"GET {url} answered HTTP {reply.status}")
        return reply.text.strip() or None

    def lines(self, path: str) -> list[str]:
        """A list item (one value per line); empty when missing."""
        text = self.text(path)
        return [line.strip() for line in text.splitlines() if line.strip()] if text else []

    def json(self, path: str) -> Any:
        """A JSON item, or None when missing."""
        text = self.text(path)
        return None if text is None else parse_json(text, f"IMDS {path}")
