"""The server's answers as bytes: its error-body shapes, the body it sends with each status,
and `Reply`, a complete HTTP answer decided under the fake's lock and written afterwards.

Error bodies imitate the real server's exception handler: every non-2xx JSON answer carries
`error_class` and `error_message` next to DRF's own keys, and a proxy in front of it answers
502/503/504 with an HTML page, so a client must cope with a body that is not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final


def _error_detail_repr(errors: Mapping[str, Any]) -> str:
    """Imitate the Python repr of DRF's error dict that the server puts in error_message."""
    def one(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(one(v) for v in value) + "]"
        return f"ErrorDetail(string={str(value)!r}, code='invalid')"
    return "{" + ", ".join(f"{k!r}: {one(v)}" for k, v in errors.items()) + "}"


def validation_body(errors: Mapping[str, Any], error_class: str = "ValidationError") -> dict[
        str, Any]:
    return {**errors, "error_class": error_class, "error_message": _error_detail_repr(errors)}


def detail_body(detail: str, code: str, error_class: str) -> dict[str, Any]:
    return {"detail": detail, "error_code": code, "error_class": error_class,
            "error_message": detail}


_PROXY_PAGES: Final[Mapping[int, str]] = {
    502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out"}


def default_body(status: int, method: str = "POST") -> Any:
    """The body the real server (or the proxy in front of it) sends with `status`.

    Returns a JSON-able value, a str (HTML page of a proxy for 502/503/504) or None (empty).
    """
    bodies: dict[int, Any] = {
        400: validation_body({"non_field_errors": ["Invalid data."]}),
        401: detail_body("Invalid token.", "authentication_failed", "AuthenticationFailed"),
        403: detail_body("Insufficient Group access level", "permission_denied",
                         "PermissionDenied"),
        404: {"detail": "No TaskExecution matches the given query."},
        409: None if method == "POST" else validation_body(
            {"status": "Status cannot be set to RUNNING after STOPPED"}),
        422: validation_body({"task": ["Task does not exist"]}, "UnprocessableEntity"),
        429: detail_body("Request was throttled.", "throttled", "Throttled"),
        500: {"error_class": "KeyError", "error_message": "'BOGUS'"},
    }
    if status in bodies:
        return bodies[status]
    if status in _PROXY_PAGES:
        title = _PROXY_PAGES[status]
        return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
    if status == 204:
        return None
    if 200 <= status < 300:
        return {}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return detail_body(phrase, "error", "APIException")


@dataclass
class Reply:
    """A complete HTTP answer, decided under the lock and written afterwards."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """Encode `body` like `Respond.body`: JSON for dict/list, raw for str/bytes."""
        out = dict(headers or {})
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
            if body.lstrip().startswith("<"):
                out.setdefault("Content-Type", "text/html")
        else:
            data = json.dumps(body).encode()
        if data:
            out.setdefault("Content-Type", "application/json")
        return cls(status, data, out)
