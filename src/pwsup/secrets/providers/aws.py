"""What the AWS providers share: the region, the clients, and turning errors into reasons.

- Region: the one in the ARN when the address is an ARN, else the configured one
  (`--secrets-aws-region`, then AWS_REGION, then AWS_DEFAULT_REGION of the environment the
  resolver was given). No region is a clear error, not boto3's NoRegionError traceback.
- Clients: one per (service, region), created on first use and kept for the resolver's
  life. proc_wrapper bound its Secrets Manager client to the first region it saw and
  never retried a failed creation; here a failed creation is simply tried again next time.
- boto3 is imported when the first client is made, never when pwsup starts: most runs
  fetch nothing from AWS, and boto3 costs far more to import than the rest of pwsup.
- Credentials and endpoints follow boto3's usual chain (environment, shared files,
  container and instance roles, AWS_ENDPOINT_URL...).
- Errors: an AWS error becomes "`Operation` failed: `ErrorCode`". AWS messages are left
  out: they quote identifiers and sometimes request data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pwsup.secrets.errors import FetchError

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
RETRIES = {"max_attempts": 5, "mode": "standard"}
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

ClientHook = Callable[[str, Any], None]
"""Called with (service name, client) for every client created; tests count calls with
it (`client.meta.events.register(...)`)."""


def configured_region(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The region for addresses that carry none."""
    if explicit:
        return explicit
    for name in REGION_VARIABLES:
        if environ.get(name):
            return environ[name]
    return None


def region_of_arn(address: str) -> str | None:
    """The 4th field of an ARN (`arn:aws:ssm:eu-west-1:...` → eu-west-1), if any."""
    if not address.startswith("arn:"):
        return None
    fields = address.split(":")
    return (fields[3] or None) if len(fields) > 4 else None


class AwsClients:
    """Lazily created boto3 clients, one per (service, region)."""

    def __init__(self, region: str | None, *, hook: ClientHook | None = None) -> None:
        self.region = region
        self._hook = hook
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}

    def get(self, service: str, region: str | None = None) -> Any:
        """The client for `service` in `region` (default: the configured region)."""
        region = region or self.region
        if not region:
            raise FetchError("no AWS region: set --secrets-aws-region "
                             "(PROC_WRAPPER_SECRETS_AWS_REGION), AWS_REGION or "
                             "AWS_DEFAULT_REGION, or use an ARN")
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._create(service, region)
        return self._clients[key]

    def _create(self, service: str, region: str) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise FetchError("boto3 is needed for AWS locations "
                             "(install pwsup[aws])") from None
        try:
            if self._session is None:
                self._session = boto3.session.Session()
            client = self._session.client(
                service, region_name=region,
                config=Config(retries=RETRIES,  # type: ignore[arg-type]
                              connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT))
        except Exception as error:
            raise FetchError(f"cannot create the AWS {service} client: "
                             f"{type(error).__name__}") from None
        if self._hook is not None:
            self._hook(service, client)
        return client

    def close(self) -> None:
        """Close every client's connection pool."""
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if close is not None:
                close()
        self._clients.clear()


def call(operation: str, function: Callable[[], Any]) -> Any:
    """Run one AWS call, translating its failures into FetchError with a safe reason."""
    try:
        return function()
    except FetchError:
        raise
    except Exception as error:
        raise FetchError(f"{operation} failed: {_error_code(error)}") from None


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__
