"""AWS Lambda (embedded mode): the function's environment plus the handler's context.

Detection needs both `LAMBDA_TASK_ROOT` and the `context` object the Lambda runtime passes
to the handler (given as `lambda_context`): the environment tells nothing about the
invocation, and the function ARN is only on the context.

Mapping:

- top level: `execution_method_type` "AWS Lambda", `infrastructure_type` "AWS",
  `allocated_memory_mb` = AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
- details common to both views: `runtime_id` (AWS_EXECUTION_ENV), `function_name`
  (AWS_LAMBDA_FUNCTION_NAME), `function_version` (AWS_LAMBDA_FUNCTION_VERSION), `init_type`
  (AWS_LAMBDA_INITIALIZATION_TYPE), `dotnet_prejit` (AWS_LAMBDA_DOTNET_PREJIT),
  `function_memory_mb`, `time_zone_name` (TZ), `function_arn` (context.invoked_function_arn);
- Task Execution only: `aws_request_id`, `cognito_identity {id, pool_id}` (context.identity),
  `client_context.client {installation_id, app_title, app_version_name, app_version_code,
  app_package_name}` (context.client_context.client);
- `infrastructure_settings`: `network.region` (AWS_REGION, else the function ARN's),
  `xray {trace_id (_X_AMZN_TRACE_ID, execution only), context_missing
  (AWS_XRAY_CONTEXT_MISSING)}`, and `logging {driver "awslogs", options {group
  (AWS_LAMBDA_LOG_GROUP_NAME), region, stream (AWS_LAMBDA_LOG_STREAM_NAME, execution
  only)}}` when a log group is set.

Context attributes are read with `getattr`, so any object of the same shape works (tests
use a plain namespace); missing attributes are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

from pwsup.runtime.context import FetchContext, Fetcher, env_int, env_text, host_name
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.model import AWS, JsonDict, RuntimeMetadata, Scalars, assemble
from pwsup.runtime.regions import first_region, region_of_arn

NAME = "AWS Lambda"
DETECTION_VARIABLE = "LAMBDA_TASK_ROOT"
CLIENT_FIELDS = ("installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name")


def applies(ctx: FetchContext) -> bool:
    return env_text(ctx.environ, DETECTION_VARIABLE) is not None


def fetch(ctx: FetchContext) -> RuntimeMetadata:
    context = ctx.lambda_context
    function_arn = _attribute(context, "invoked_function_arn")
    if function_arn is None:
        raise MetadataError("running in AWS Lambda, but no handler context with an "
                            "invoked_function_arn was given")
    environ = ctx.environ
    memory = env_int(environ, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    common = {**function_details(environ), "function_memory_mb": memory,
              "function_arn": function_arn}
    region = first_region(env_text(environ, "AWS_REGION"), region_of_arn(function_arn))
    return assemble(
        Scalars(NAME, AWS, allocated_memory_mb=memory), source=NAME,
        details={**common, **invocation_details(context)}, capability=common,
        settings=settings(environ, region), hostname=host_name(), region=region)


def function_details(environ: Mapping[str, str]) -> JsonDict:
    """The function's configuration, from the variables the Lambda runtime sets."""
    return {
        "runtime_id": env_text(environ, "AWS_EXECUTION_ENV"),
        "function_name": env_text(environ, "AWS_LAMBDA_FUNCTION_NAME"),
        "function_version": env_text(environ, "AWS_LAMBDA_FUNCTION_VERSION"),
        "init_type": env_text(environ, "AWS_LAMBDA_INITIALIZATION_TYPE"),
        "dotnet_prejit": env_text(environ, "AWS_LAMBDA_DOTNET_PREJIT"),
        "time_zone_name": env_text(environ, "TZ"),
    }


def invocation_details(context: object) -> JsonDict:
    """What is specific to this invocation: request id, Cognito identity, mobile client."""
    identity = getattr(context, "identity", None)
    client = getattr(getattr(context, "client_context", None), "client", None)
    return {
        "aws_request_id": _attribute(context, "aws_request_id"),
        "cognito_identity": {
            "id": _attribute(identity, "cognito_identity_id"),
            "pool_id": _attribute(identity, "cognito_identity_pool_id"),
        },
        "client_context": {"client": {name: _attribute(client, name) for name in CLIENT_FIELDS}},
    }


def settings(environ: Mapping[str, str], region: str | None) -> JsonDict:
    group = env_text(environ, "AWS_LAMBDA_LOG_GROUP_NAME")
    logging = None if group is None else {"driver": "awslogs", "options": {
        "group": group, "region": region,
        "stream": env_text(environ, "AWS_LAMBDA_LOG_STREAM_NAME")}}
    return {
        "network": {"region": region},
        "xray": {"trace_id": env_text(environ, "_X_AMZN_TRACE_ID"),
                 "context_missing": env_text(environ, "AWS_XRAY_CONTEXT_MISSING")},
        "logging": logging,
    }


def _attribute(obj: object, name: str) -> str | None:
    value = getattr(obj, name, None)
    return None if value is None or value == "" else str(value)


FETCHER = Fetcher(NAME, applies=applies, fetch=fetch,
                  requirement=f"{DETECTION_VARIABLE} and a Lambda handler context")
