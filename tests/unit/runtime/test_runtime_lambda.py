"""Lambda environment + handler context → RuntimeMetadata."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from runtime_fakes import context, lambda_context

from pwsup.config.params import Params
from pwsup.runtime import aws_lambda, fetch
from pwsup.runtime.errors import MetadataError

ENVIRON = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_LAMBDA_FUNCTION_NAME": "resize-images",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "TZ": ":UTC",
    "AWS_REGION": "eu-west-1",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
                        "Sampled=1",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/resize-images",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/28/[$LATEST]0123456789abcdef",
}
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:resize-images:live"


def test_environment_and_context_are_mapped() -> None:
    metadata = aws_lambda.fetch(context(ENVIRON, lambda_context=lambda_context()))

    common = {
        "runtime_id": "AWS_Lambda_python3.12",
        "function_name": "resize-images",
        "function_version": "$LATEST",
        "init_type": "on-demand",
        "function_memory_mb": 1024,
        "time_zone_name": ":UTC",
        "function_arn": FUNCTION_ARN,
    }
    assert metadata.execution == {
        "execution_method_type": "AWS Lambda",
        "infrastructure_type": "AWS",
        "allocated_memory_mb": 1024,
        "execution_method_details": {
            **common,
            "aws_request_id": "3f1c2b9e-5d6a-4e8f-9a0b-1c2d3e4f5a6b",
            "cognito_identity": {"id": "eu-west-1:abcd-1234", "pool_id": "eu-west-1:pool-5678"},
            "client_context": {"client": {
                "installation_id": "inst-1", "app_title": "Gallery", "app_version_name": "2.1",
                "app_version_code": "21", "app_package_name": "com.example.gallery"}},
        },
        "infrastructure_settings": {
            "network": {"region": "eu-west-1"},
            "xray": {"trace_id": ENVIRON["_X_AMZN_TRACE_ID"], "context_missing": "LOG_ERROR"},
            "logging": {"driver": "awslogs", "options": {
                "group": "/aws/lambda/resize-images", "region": "eu-west-1",
                "stream": "2026/11/28/[$LATEST]0123456789abcdef"}},
        },
    }
    assert metadata.task == {
        "execution_method_type": "AWS Lambda",
        "infrastructure_type": "AWS",
        "allocated_memory_mb": 1024,
        "execution_method_capability_details": common,
        "infrastructure_settings": {
            "network": {"region": "eu-west-1"},
            "xray": {"context_missing": "LOG_ERROR"},
            "logging": {"driver": "awslogs", "options": {
                "group": "/aws/lambda/resize-images", "region": "eu-west-1"}},
        },
    }
    assert metadata.region == "eu-west-1"
    assert metadata.source == "AWS Lambda"
    assert metadata.sidecar is False
    assert metadata.container_env == {}


def test_minimal_context_and_environment() -> None:
    bare = SimpleNamespace(invoked_function_arn=FUNCTION_ARN, identity=None,
                           client_context=None)
    metadata = aws_lambda.fetch(context({"LAMBDA_TASK_ROOT": "/var/task"},
                                        lambda_context=bare))
    assert metadata.execution == {
        "execution_method_type": "AWS Lambda",
        "infrastructure_type": "AWS",
        "execution_method_details": {"function_arn": FUNCTION_ARN},
        "infrastructure_settings": {"network": {"region": "eu-west-1"}},
    }
    assert metadata.region == "eu-west-1", "taken from the function ARN without AWS_REGION"


def test_a_context_without_function_arn_is_an_error() -> None:
    with pytest.raises(MetadataError, match="invoked_function_arn"):
        aws_lambda.fetch(context(ENVIRON, lambda_context=SimpleNamespace()))
    with pytest.raises(MetadataError):
        aws_lambda.fetch(context(ENVIRON))


def test_detection_without_context_falls_back_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = fetch(Params(), ENVIRON)
    assert metadata.source == "Generic"
    assert metadata.execution["execution_method_type"] == "Unknown"
    assert "AWS Lambda" in caplog.text


def test_detection_with_context() -> None:
    metadata = fetch(Params(), ENVIRON, lambda_context=lambda_context())
    assert metadata.source == "AWS Lambda"
    assert metadata.execution["execution_method_details"]["function_arn"] == FUNCTION_ARN
