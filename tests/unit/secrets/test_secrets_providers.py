"""Providers without AWS: addressing rules, error wording, and fakes behind `AwsClients`.

The AWS providers talk to real (moto) endpoints in tests/integration/test_secrets_moto.py;
here they get fake clients through the same seam (`AwsClients.get`), which covers what
moto does not serve (AppConfig Data) and what is awkward to provoke there.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pwsup.secrets.errors import FetchError, UnresolvedError
from pwsup.secrets.providers import aws
from pwsup.secrets.providers.aws_appconfig import AppConfigProvider
from pwsup.secrets.providers.aws_s3 import S3Provider, decode
from pwsup.secrets.providers.aws_s3 import request_for as s3_request
from pwsup.secrets.providers.aws_sm import SecretsManagerProvider
from pwsup.secrets.providers.aws_sm import request_for as sm_request
from pwsup.secrets.providers.aws_ssm import ParameterStoreProvider
from pwsup.secrets.providers.base import Fetched
from pwsup.secrets.providers.config import ConfigProvider
from pwsup.secrets.providers.env import EnvProvider
from pwsup.secrets.providers.file import FileProvider


class FakeClients(aws.AwsClients):
    """`AwsClients` handing out given fakes, recording the (service, region) asked for."""

    def __init__(self, client: Any, region: str | None = "eu-west-1") -> None:
        super().__init__(region)
        self.client = client
        self.requests: list[tuple[str, str | None]] = []

    def get(self, service: str, region: str | None = None) -> Any:
        self.requests.append((service, region or self.region))
        return self.client


class Recorder:
    """A fake boto3 client: records calls, answers from a table."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def method(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            answer = self.answers[name]
            if isinstance(answer, Exception):
                raise answer
            return answer
        return method


class ClientError(Exception):
    """Shaped like botocore's ClientError (a `response` with an error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.response = {"Error": {"Code": code, "Message": message}}


def test_configured_region_precedence() -> None:
    env = {"AWS_REGION": "r1", "AWS_DEFAULT_REGION": "r2"}
    assert aws.configured_region("r0", env) == "r0"
    assert aws.configured_region(None, env) == "r1"
    assert aws.configured_region(None, {"AWS_DEFAULT_REGION": "r2"}) == "r2"
    assert aws.configured_region(None, {"AWS_REGION": ""}) is None


def test_region_of_arn() -> None:
    assert aws.region_of_arn("arn:aws:ssm:eu-west-3:1:parameter/x") == "eu-west-3"
    assert aws.region_of_arn("arn:aws:s3:::bucket/key") is None
    assert aws.region_of_arn("/plain/name") is None


def test_no_region_is_a_clear_error() -> None:
    with pytest.raises(FetchError, match="no AWS region"):
        aws.AwsClients(None).get("ssm")


def test_aws_errors_keep_the_code_not_the_message() -> None:
    def failing() -> None:
        raise ClientError("AccessDeniedException", "not allowed to read hunter2")
    with pytest.raises(FetchError) as caught:
        aws.call("GetSecretValue", failing)
    assert str(caught.value) == "GetSecretValue failed: AccessDeniedException"
    with pytest.raises(FetchError, match="GetObject failed: TimeoutError"):
        aws.call("GetObject", lambda: (_ for _ in ()).throw(TimeoutError("hunter2")))


def test_secrets_manager_string_binary_and_region_from_arn() -> None:
    arn = "arn:aws:secretsmanager:us-east-2:123:secret:db-AbCdEf"
    client = Recorder(get_secret_value={"SecretString": "s3cr3t"})
    clients = FakeClients(client)
    provider = SecretsManagerProvider(clients)
    assert provider.fetch(arn) == Fetched("s3cr3t")
    assert clients.requests == [("secretsmanager", "us-east-2")]
    client.answers["get_secret_value"] = {"SecretBinary": b"\x00\x01binary"}
    assert provider.fetch("name").text == "AAFiaW5hcnk="
    assert clients.requests[-1] == ("secretsmanager", "eu-west-1")


def test_secrets_manager_version_selector() -> None:
    uuid = "0b9a2f3c-1234-4abc-8def-0123456789ab"
    assert sm_request("db") == ("db", {"SecretId": "db"})
    assert sm_request(f"db#{uuid}")[1] == {"SecretId": "db", "VersionId": uuid}
    assert sm_request("db#AWSPREVIOUS")[1] == {"SecretId": "db", "VersionStage": "AWSPREVIOUS"}


def test_ssm_string_list_becomes_json() -> None:
    client = Recorder(get_parameter={"Parameter": {"Type": "StringList", "Value": "a,b,c"}})
    provider = ParameterStoreProvider(FakeClients(client))
    assert provider.fetch("/list:2") == Fetched('["a", "b", "c"]', "json")
    assert client.calls == [("get_parameter", {"Name": "/list:2", "WithDecryption": True})]


def test_appconfig_session_and_content_type() -> None:
    client = Recorder(
        start_configuration_session={"InitialConfigurationToken": "tok"},
        get_latest_configuration={"Configuration": io.BytesIO(b"a: 1\n"),
                                  "ContentType": "application/x-yaml"})
    clients = FakeClients(client)
    fetched = AppConfigProvider(clients).fetch("app/prod/profile")
    assert fetched == Fetched("a: 1\n", "yaml")
    assert client.calls == [
        ("start_configuration_session", {"ApplicationIdentifier": "app",
                                         "EnvironmentIdentifier": "prod",
                                         "ConfigurationProfileIdentifier": "profile"}),
        ("get_latest_configuration", {"ConfigurationToken": "tok"})]
    assert clients.requests == [("appconfigdata", "eu-west-1")]
    with pytest.raises(FetchError, match="application/environment/profile"):
        AppConfigProvider(clients).fetch("app/prod")


def test_s3_addresses() -> None:
    assert s3_request("b/dir/k.json") == {"Bucket": "b", "Key": "dir/k.json"}
    assert s3_request("b/k#v1") == {"Bucket": "b", "Key": "k", "VersionId": "v1"}
    with pytest.raises(FetchError):
        s3_request("bucket-only")


def test_s3_fetch_uses_content_type() -> None:
    client = Recorder(get_object={"Body": io.BytesIO('{"é": 1}'.encode("latin-1")),
                                  "ContentType": "application/json; charset=latin-1"})
    assert S3Provider(FakeClients(client), 1 << 20).fetch("b/k") == Fetched('{"é": 1}', "json")


def test_s3_decoding() -> None:
    assert decode("é".encode(), None, None) == "é"
    assert decode("é".encode("utf-16"), None, "utf-16") == "é"
    assert decode(gzip.compress(b"zipped"), "text/plain", "gzip") == "zipped"
    assert decode(b"x", None, "base64") == "x"  # not a text encoding: utf-8
    with pytest.raises(FetchError):
        decode(b"\xff\xfe\xfa", None, None)


def test_env_provider() -> None:
    environment: dict[str, Any] = {"A": "text", "B": {"k": [1]}}
    provider = EnvProvider(lambda: environment)
    assert provider.fetch("A") == Fetched("text")
    assert provider.fetch("B") == Fetched('{"k": [1]}', "json")
    with pytest.raises(UnresolvedError):
        provider.fetch("C")
    assert not provider.cacheable


def test_config_provider() -> None:
    provider = ConfigProvider(lambda: {"db": {"user": "u"}})
    assert provider.fetch("$.db") == Fetched('{"user": "u"}', "json")
    assert json.loads(provider.fetch("$.db.user").text) == "u"
    with pytest.raises(UnresolvedError):
        provider.fetch("$.nope")


def test_file_provider(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("content\n")
    assert FileProvider(1 << 20).fetch(str(path)) == Fetched("content\n")
    with pytest.raises(FetchError) as caught:
        FileProvider(1 << 20).fetch(str(tmp_path / "hunter2"))
    assert "hunter2" not in str(caught.value)
    path.write_bytes(b"\xff")
    with pytest.raises(FetchError, match="UTF-8"):
        FileProvider(1 << 20).fetch(str(path))
