"""AWS_SM: AWS Secrets Manager (`arn:aws:secretsmanager:...`, `AWS_SM:name`).

The address is anything GetSecretValue accepts as SecretId: a name, a full ARN (with the
random `-AbCdEf` suffix Secrets Manager appends) or a partial ARN without it. The region
comes from the ARN, else the configured one.

Addition: `#VERSION` selects a version (secret names cannot contain `#`): a version id
(a UUID, as Secrets Manager generates them) or otherwise a staging label such as
AWSPREVIOUS. Without it the current version is fetched.

A string secret is used as is; a binary secret is handed on base64-encoded, as
proc_wrapper documented.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from pwsup.secrets.errors import FetchError
from pwsup.secrets.providers import aws
from pwsup.secrets.providers.base import Fetched

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_VERSION_ID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


class SecretsManagerProvider:
    cacheable = True

    def __init__(self, clients: aws.AwsClients) -> None:
        self._clients = clients

    def fetch(self, address: str) -> Fetched:
        secret_id, request = request_for(address)
        client: SecretsManagerClient = self._clients.get(
            "secretsmanager", aws.region_of_arn(secret_id))
        response = aws.call("GetSecretValue", lambda: client.get_secret_value(**request))
        if response.get("SecretString") is not None:
            return Fetched(response["SecretString"])
        if response.get("SecretBinary") is not None:
            return Fetched(base64.b64encode(response["SecretBinary"]).decode("ascii"))
        raise FetchError("GetSecretValue returned neither SecretString nor SecretBinary")


def request_for(address: str) -> tuple[str, dict[str, Any]]:
    """(SecretId, GetSecretValue arguments) of an address with an optional `#VERSION`."""
    secret_id, _, version = address.partition("#")
    request: dict[str, Any] = {"SecretId": secret_id}
    if version:
        key = "VersionId" if _VERSION_ID.fullmatch(version) else "VersionStage"
        request[key] = version
    return secret_id, request
