"""The IAM role a process runs as, from STS GetCallerIdentity (CodeBuild's `assumed_role_arn`).

- boto3 is imported here, on first use: it is optional (`pwsup[aws]`) and slow to import.
- The endpoint follows AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL, of the environment the
  fetch was given (botocore only reads the process environment), so tests can point it at
  a moto server. Credentials from that environment are used when present, else boto3's
  usual chain (CodeBuild provides container credentials).
- One attempt, with the fetch's short timeouts: the role is a nicety, not worth a delay.
- An assumed-role ARN (`arn:aws:sts::123:assumed-role/name/session`) becomes the role's
  IAM ARN (`arn:aws:iam::123:role/name`); any other identity has no role to report.
"""

from __future__ import annotations

from collections.abc import Mapping

from pwsup.runtime.context import env_text
from pwsup.runtime.errors import MetadataError

DEFAULT_REGION = "us-east-1"
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def role_arn_of_identity(identity_arn: str | None) -> str | None:
    """The IAM role ARN behind an STS assumed-role ARN, else None."""
    if not identity_arn:
        return None
    fields = identity_arn.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn" or fields[2] != "sts":
        return None
    resource = fields[5].split("/")
    if len(resource) < 2 or resource[0] != "assumed-role" or not resource[1]:
        return None
    return f"arn:{fields[1]}:iam::{fields[4]}:role/{resource[1]}"


def caller_identity_arn(environ: Mapping[str, str], region: str | None,
                        timeout: float) -> str:
    """The ARN STS reports for the current credentials; raises `MetadataError`."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise MetadataError("boto3 is not installed (install pwsup[aws])") from None
    access_key, secret_key, token = (env_text(environ, name) for name in CREDENTIAL_VARIABLES)
    try:
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            aws_session_token=token, region_name=region or DEFAULT_REGION)
        client = session.client(
            "sts", endpoint_url=env_text(environ, "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"),
            config=Config(connect_timeout=timeout, read_timeout=timeout,
                          retries={"max_attempts": 1, "mode": "standard"}))
        try:
            return client.get_caller_identity()["Arn"]
        finally:
            client.close()
    except Exception as error:
        raise MetadataError(f"STS GetCallerIdentity failed: {type(error).__name__}") from None
