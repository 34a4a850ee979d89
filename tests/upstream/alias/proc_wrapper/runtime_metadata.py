"""Upstream's `proc_wrapper.runtime_metadata` names its tests import."""

from ._missing import NotProvided

EXECUTION_METHOD_TYPE_AWS_ECS = "AWS ECS"
EXECUTION_METHOD_TYPE_AWS_LAMBDA = "AWS Lambda"
AwsLambdaRuntimeMetadataFetcher = NotProvided("AwsLambdaRuntimeMetadataFetcher")
