"""CodeBuild environment → RuntimeMetadata, and the build role from STS (a moto server)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from runtime_fakes import context

from pwsup.config.params import Params
from pwsup.runtime import MetadataCache, codebuild, sts

BUILD_ARN = ("arn:aws:codebuild:eu-west-1:123456789012:build/"
             "nightly-report-build:0b1c9d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e")
PROJECT_ARN = "arn:aws:codebuild:eu-west-1:123456789012:build/nightly-report-build"
ROLE_ARN = "arn:aws:iam::123456789012:role/codebuild-nightly-report-role"
ENVIRON = {
    "CODEBUILD_BUILD_ARN": BUILD_ARN,
    "CODEBUILD_BUILD_ID": "nightly-report-build:0b1c9d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
    "CODEBUILD_BUILD_IMAGE": "aws/codebuild/standard:7.0",
    "CODEBUILD_BUILD_NUMBER": "42",
    "CODEBUILD_BUILD_SUCCEEDING": "1",
    "CODEBUILD_INITIATOR": "codepipeline/nightly-report",
    "CODEBUILD_KMS_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:alias/aws/s3",
    "CODEBUILD_LOG_PATH": "0b1c9d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
    "CODEBUILD_PUBLIC_BUILD_URL": "https://public.example/builds/0b1c9d3e",
    "CODEBUILD_RESOLVED_SOURCE_VERSION": "3c9d1e7f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d",
    "CODEBUILD_SOURCE_REPO_URL": "https://github.com/example/nightly-report",
    "CODEBUILD_SOURCE_VERSION": "refs/heads/main",
    "CODEBUILD_SRC_DIR": "/codebuild/output/src123/src/github.com/example/nightly-report",
    "CODEBUILD_START_TIME": "1764360838123",
    "CODEBUILD_BATCH_IDENTIFIER": "batch-7",
    "CODEBUILD_BATCH_BUILD_IDENTIFIER": "build1",
    "CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID": "98765",
    "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main",
    "CODEBUILD_WEBHOOK_EVENT": "PULL_REQUEST_UPDATED",
    "CODEBUILD_WEBHOOK_MERGE_COMMIT": "aa11",
    "CODEBUILD_WEBHOOK_PREV_COMMIT": "bb22",
    "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature",
    "CODEBUILD_WEBHOOK_TRIGGER": "pr/17",
    "AWS_REGION": "eu-west-1",
}
MOTO_SERVER = Path(sys.executable).parent / "moto_server"
STARTUP_LIMIT = 15.0


def test_environment_is_mapped() -> None:
    metadata = codebuild.fetch(context(ENVIRON, memo={codebuild.ROLE_MEMO_KEY: ROLE_ARN}))

    common = {
        "build_image": "aws/codebuild/standard:7.0",
        "batch_identifier": "batch-7",
        "source_repo_url": "https://github.com/example/nightly-report",
        "source_version": "refs/heads/main",
        "kms_key_id": "arn:aws:kms:eu-west-1:123456789012:alias/aws/s3",
        "initiator": "codepipeline/nightly-report",
        "assumed_role_arn": ROLE_ARN,
    }
    assert metadata.execution == {
        "execution_method_type": "AWS CodeBuild",
        "infrastructure_type": "AWS",
        "execution_method_details": {
            **common,
            "build_arn": BUILD_ARN,
            "build_id": "nightly-report-build:0b1c9d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
            "batch_build_identifier": "build1",
            "public_build_url": "https://public.example/builds/0b1c9d3e",
            "resolved_source_version": "3c9d1e7f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d",
            "src_dir": "/codebuild/output/src123/src/github.com/example/nightly-report",
            "build_number": 42,
            "build_succeeding": True,
            "start_time": "2025-11-28T20:13:58.123000+00:00",
            "webhook": {"actor_account_id": "98765", "base_ref": "refs/heads/main",
                        "event": "PULL_REQUEST_UPDATED", "merge_commit": "aa11",
                        "prev_commit": "bb22", "head_ref": "refs/heads/feature",
                        "trigger": "pr/17"},
        },
        "infrastructure_settings": {
            "region": "eu-west-1",
            "network": {"region": "eu-west-1"},
            "logging": {"driver": "awslogs", "options": {
                "region": "eu-west-1", "stream": "0b1c9d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e"}},
        },
    }
    assert metadata.task == {
        "execution_method_type": "AWS CodeBuild",
        "infrastructure_type": "AWS",
        "execution_method_capability_details": {**common, "build_arn": PROJECT_ARN},
        "infrastructure_settings": {
            "region": "eu-west-1",
            "network": {"region": "eu-west-1"},
            "logging": {"driver": "awslogs", "options": {"region": "eu-west-1"}},
        },
    }
    assert metadata.region == "eu-west-1"
    assert metadata.source == "AWS CodeBuild"


def test_minimal_environment_takes_the_region_from_the_arn() -> None:
    metadata = codebuild.fetch(context({"CODEBUILD_BUILD_ARN": BUILD_ARN,
                                        "CODEBUILD_BUILD_SUCCEEDING": "0",
                                        "CODEBUILD_START_TIME": "yesterday"},
                                       memo={codebuild.ROLE_MEMO_KEY: None}))
    details = metadata.execution["execution_method_details"]
    assert details == {"build_arn": BUILD_ARN, "build_succeeding": False}
    assert metadata.region == "eu-west-1"


@pytest.mark.parametrize(("identity", "role"), [
    ("arn:aws:sts::123456789012:assumed-role/codebuild-role/AWSCodeBuild-1f2e",
     "arn:aws:iam::123456789012:role/codebuild-role"),
    ("arn:aws-cn:sts::210987654321:assumed-role/r/s", "arn:aws-cn:iam::210987654321:role/r"),
    ("arn:aws:sts::123456789012:user/moto", None),
    ("arn:aws:iam::123456789012:role/r", None),
    ("not-an-arn", None),
    (None, None),
])
def test_role_arn_of_identity(identity: str | None, role: str | None) -> None:
    assert sts.role_arn_of_identity(identity) == role


@pytest.mark.parametrize(("arn", "project"), [
    (BUILD_ARN, PROJECT_ARN),
    ("arn:aws:codebuild:eu-west-1:123456789012:build/p", "arn:aws:codebuild:eu-west-1:"
                                                         "123456789012:build/p"),
])
def test_project_arn(arn: str, project: str) -> None:
    assert codebuild.project_arn(arn) == project


# -- STS against a moto server ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def _wait_until_serving(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"moto_server exited with {server.returncode}")
        try:
            with requests.get(f"{url}/moto-api/", timeout=1) as reply:
                if reply.ok:
                    return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    pytest.fail("moto_server did not start")


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Dummy credentials for moto; no shared AWS files or profile of the machine."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"}


def _assume(aws_env: dict[str, str], role: str) -> dict[str, str]:
    """Credentials of an assumed role, as CodeBuild gives a build."""
    import boto3

    client = boto3.client("sts", endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                          region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    try:
        credentials = client.assume_role(RoleArn=role,
                                         RoleSessionName="AWSCodeBuild-0b1c9d3e")["Credentials"]
    finally:
        client.close()
    return {**aws_env, "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]}


def test_role_comes_from_sts(aws_env: dict[str, str]) -> None:
    environ = {**_assume(aws_env, ROLE_ARN), **ENVIRON}
    metadata = codebuild.fetch(context(environ))
    assert metadata.execution["execution_method_details"]["assumed_role_arn"] == ROLE_ARN
    assert metadata.task["execution_method_capability_details"]["assumed_role_arn"] == ROLE_ARN


def test_an_identity_that_is_not_a_role_reports_no_role(aws_env: dict[str, str]) -> None:
    metadata = codebuild.fetch(context({**aws_env, **ENVIRON}))
    assert "assumed_role_arn" not in metadata.execution["execution_method_details"]


def test_sts_is_asked_once_per_cache(aws_env: dict[str, str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = sts.caller_identity_arn

    def counting(*args: object, **kwargs: object) -> str:
        calls.append("sts")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sts, "caller_identity_arn", counting)
    cache = MetadataCache(Params(), {**_assume(aws_env, ROLE_ARN), **ENVIRON})
    first = cache.get()
    second = cache.refresh(force=True)
    assert calls == ["sts"]
    assert first.source == second.source == "AWS CodeBuild"
    assert second.execution["execution_method_details"]["assumed_role_arn"] == ROLE_ARN


def test_unreachable_sts_only_leaves_the_role_out(caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    environ = {**ENVIRON, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = codebuild.fetch(context(environ))
    assert metadata.source == "AWS CodeBuild"
    assert "assumed_role_arn" not in metadata.execution["execution_method_details"]
    assert "STS GetCallerIdentity failed" in caplog.text
