"""AWS_SSM: SSM Parameter Store (`ssm:/app/db`, `AWS_SSM:/app/db`, `arn:aws:ssm:...`).

The name may carry SSM's own selector, `:VERSION` or `:LABEL` (`/app/db:3`), and may be a
parameter ARN (its region is used). SecureStrings are decrypted. A StringList parameter
becomes a JSON list (with a JSON hint), so it arrives as a list rather than as
comma-joined text.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pwsup.secrets.providers import aws
from pwsup.secrets.providers.base import Fetched

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


class ParameterStoreProvider:
    cacheable = True

    def __init__(self, clients: aws.AwsClients) -> None:
        self._clients = clients

    def fetch(self, address: str) -> Fetched:
        client: SSMClient = self._clients.get("ssm", aws.region_of_arn(address))
        response = aws.call(
            "GetParameter", lambda: client.get_parameter(Name=address, WithDecryption=True))
        parameter = response["Parameter"]
        value = parameter.get("Value", "")
        if parameter.get("Type") == "StringList":
            return Fetched(json.dumps(value.split(",")), "json")
        return Fetched(value)
