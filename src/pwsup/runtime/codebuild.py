"""AWS CodeBuild: the build's environment variables, plus its role from STS.

Detection: `CODEBUILD_BUILD_ARN`. Mapping:

- top level: `execution_method_type` "AWS CodeBuild", `infrastructure_type` "AWS";
- details common to both views: `build_arn`, `build_image`, `batch_identifier`,
  `source_repo_url`, `source_version`, `kms_key_id`, `initiator`, `assumed_role_arn`; each
  from `CODEBUILD_<NAME IN CAPITALS>`. In the Task view `build_arn` is the project's (the
  build ARN without its trailing `:<build id>`); in the Task Execution view, the build's;
- Task Execution only: `build_id`, `batch_build_identifier`, `public_build_url`,
  `resolved_source_version`, `src_dir`, `build_number` (int), `build_succeeding` (bool:
  CODEBUILD_BUILD_SUCCEEDING is "1"), `start_time` (CODEBUILD_START_TIME, milliseconds since
  the epoch, as an ISO-8601 UTC time; proc_wrapper gave a local time without a zone), and
  `webhook {actor_account_id, base_ref, event, merge_commit, prev_commit, head_ref,
  trigger}` from `CODEBUILD_WEBHOOK_*`;
- `infrastructure_settings`: `region` and `network.region` (AWS_REGION, else the build
  ARN's), `logging {driver "awslogs", options {region, stream (CODEBUILD_LOG_PATH,
  execution only)}}`.

`assumed_role_arn` needs a network call, so it is learnt once per `MetadataCache` and kept
in its memo (proc_wrapper called STS at every fetch). Failing to learn it only
leaves it out, with a warning: the rest of the metadata is still good.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone

from pwsup.runtime import sts
from pwsup.runtime.context import FetchContext, Fetcher, env_int, env_text, host_name
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.model import AWS, JsonDict, RuntimeMetadata, Scalars, assemble
from pwsup.runtime.regions import first_region, region_of_arn

NAME = "AWS CodeBuild"
DETECTION_VARIABLE = "CODEBUILD_BUILD_ARN"
ROLE_MEMO_KEY = "codebuild.assumed_role_arn"
LOG = logging.getLogger("pwsup.runtime")

COMMON_FIELDS = ("build_image", "batch_identifier", "source_repo_url", "source_version",
                 "kms_key_id", "initiator")
EXECUTION_FIELDS = ("build_id", "batch_build_identifier", "public_build_url",
                    "resolved_source_version", "src_dir")
WEBHOOK_FIELDS = ("actor_account_id", "base_ref", "event", "merge_commit", "prev_commit",
                  "head_ref", "trigger")


def applies(ctx: FetchContext) -> bool:
    return env_text(ctx.environ, DETECTION_VARIABLE) is not None


def fetch(ctx: FetchContext) -> RuntimeMetadata:
    environ = ctx.environ
    build_arn = env_text(environ, DETECTION_VARIABLE)
    if build_arn is None:
        raise MetadataError(f"{DETECTION_VARIABLE} is not set")
    region = first_region(env_text(environ, "AWS_REGION"), region_of_arn(build_arn))
    common = {**_fields(environ, "CODEBUILD_", COMMON_FIELDS),
              "assumed_role_arn": assumed_role_arn(ctx, region)}
    return assemble(
        Scalars(NAME, AWS), source=NAME,
        details={**common, "build_arn": build_arn, **execution_details(environ)},
        capability={**common, "build_arn": project_arn(build_arn)},
        settings=settings(environ, region), hostname=host_name(), region=region)


def project_arn(build_arn: str) -> str:
    """`arn:...:build/<project>:<build id>` → `arn:...:build/<project>`."""
    head, separator, _build_id = build_arn.rpartition(":")
    return head if separator and "/" in head else build_arn


def execution_details(environ: Mapping[str, str]) -> JsonDict:
    succeeding = env_text(environ, "CODEBUILD_BUILD_SUCCEEDING")
    return {
        **_fields(environ, "CODEBUILD_", EXECUTION_FIELDS),
        "build_number": env_int(environ, "CODEBUILD_BUILD_NUMBER"),
        "build_succeeding": None if succeeding is None else succeeding == "1",
        "start_time": start_time(env_text(environ, "CODEBUILD_START_TIME")),
        "webhook": _fields(environ, "CODEBUILD_WEBHOOK_", WEBHOOK_FIELDS),
    }


def start_time(milliseconds: str | None) -> str | None:
    """Milliseconds since the epoch → ISO-8601 UTC; anything else → None."""
    try:
        seconds = int(milliseconds or "") / 1000
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


def settings(environ: Mapping[str, str], region: str | None) -> JsonDict:
    return {
        "region": region,
        "network": {"region": region},
        "logging": {"driver": "awslogs", "options": {
            "region": region, "stream": env_text(environ, "CODEBUILD_LOG_PATH")}},
    }


def assumed_role_arn(ctx: FetchContext, region: str | None) -> str | None:
    """The build's service role, asked from STS once and then remembered."""
    if ROLE_MEMO_KEY not in ctx.memo:
        ctx.memo[ROLE_MEMO_KEY] = _ask_role(ctx, region)
    role = ctx.memo[ROLE_MEMO_KEY]
    return role if isinstance(role, str) else None


def _ask_role(ctx: FetchContext, region: str | None) -> str | None:
    try:
        identity = sts.caller_identity_arn(ctx.environ, region, ctx.http.timeout)
    except MetadataError as error:
        LOG.warning("CodeBuild role not reported: %s", error)
        return None
    return sts.role_arn_of_identity(identity)


def _fields(environ: Mapping[str, str], prefix: str, names: tuple[str, ...]) -> JsonDict:
    return {name: env_text(environ, prefix + name.upper()) for name in names}


FETCHER = Fetcher(NAME, applies=applies, fetch=fetch, requirement=DETECTION_VARIABLE)
