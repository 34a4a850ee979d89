"""Choosing a fetcher, running it, and falling back to generic metadata on any failure.

Order (proc_wrapper's, plus Kubernetes): an execution method given with
`--execution-method-type` is used alone; otherwise the first fetcher whose cheap
environment check passes, in the order CodeBuild (CODEBUILD_BUILD_ARN) → ECS (metadata URI)
→ Lambda (LAMBDA_TASK_ROOT) → Kubernetes (KUBERNETES_SERVICE_HOST) → generic. EC2 is never
guessed, only forced: being on an instance says nothing about how the Task was started.
Forcing "Unknown" means "not an AWS execution method": Kubernetes details are still added
when in a pod.

Metadata never stops a run: whatever goes wrong (no endpoint, a timeout, a malformed
document, a bug in a mapping) is logged once at WARNING on the `pwsup.runtime` logger and
generic metadata is returned instead. `fetch` never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pwsup.runtime import aws_lambda, codebuild, ec2, ecs, generic, kubernetes
from pwsup.runtime.context import FetchContext, Fetcher
from pwsup.runtime.http import MetadataHttp

if TYPE_CHECKING:
    from pwsup.config.params import Params
    from pwsup.runtime.model import RuntimeMetadata

LOG = logging.getLogger("pwsup.runtime")

DEFAULT_TIMEOUT = 2.0
BUDGET_PER_TIMEOUT = 4
"""A whole fetch may take this many request timeouts: enough for ECS's two requests and
EC2's many quick ones, while a slow endpoint still cannot hold a run for long."""

FETCHERS: dict[str, Fetcher] = {f.name: f for f in (
    codebuild.FETCHER, ecs.FETCHER, aws_lambda.FETCHER, ec2.FETCHER, kubernetes.FETCHER,
    generic.FETCHER)}
AUTO_ORDER = (codebuild.NAME, ecs.NAME, aws_lambda.NAME, kubernetes.NAME, generic.NAME)
FORCED_ORDER: dict[str, tuple[str, ...]] = {
    codebuild.NAME: (codebuild.NAME,),
    ecs.NAME: (ecs.NAME,),
    aws_lambda.NAME: (aws_lambda.NAME,),
    ec2.NAME: (ec2.NAME,),
    "Unknown": (kubernetes.NAME, generic.NAME),
}


class Detection(NamedTuple):
    """A fetch's result; `fetcher` is None when it fell back to generic after a problem."""

    metadata: RuntimeMetadata
    fetcher: str | None


def candidates(params: Params) -> tuple[str, ...]:
    """The fetchers to consider, in order, given the forced execution method (if any)."""
    forced = params.execution_method_type
    if forced is None:
        return AUTO_ORDER
    return FORCED_ORDER.get(str(forced), AUTO_ORDER)


def detect(ctx: FetchContext, names: Sequence[str], *, forced: bool,
           level: int = logging.WARNING) -> Detection:
    """Run the first applicable fetcher of `names`; generic metadata if none works.

    Problems are logged at `level` (WARNING unless the caller already reported the same
    failure, see `MetadataCache`).
    """
    fetcher = choose(ctx, names)
    if fetcher is None:
        if forced:
            wanted = FETCHERS[names[0]]
            LOG.log(level, "execution method %s was given, but %s was not found: "
                    "sending generic runtime metadata", wanted.name, wanted.requirement)
        return Detection(generic.metadata(), None)
    try:
        return Detection(fetcher.fetch(ctx), fetcher.name)
    except Exception as error:
        LOG.log(level, "%s runtime metadata unavailable (%s): sending generic runtime "
                "metadata", fetcher.name, _describe(error))
        return Detection(generic.metadata(), None)


def choose(ctx: FetchContext, names: Sequence[str]) -> Fetcher | None:
    """The first of `names` whose environment check passes (no I/O)."""
    for name in names:
        fetcher = FETCHERS[name]
        if fetcher.applies(ctx):
            return fetcher
    return None


def _describe(error: Exception) -> str:
    text = str(error)
    return text if text and type(error).__module__.startswith("pwsup") \
        else type(error).__name__


def run(params: Params, environ: Mapping[str, str], names: Sequence[str], *, forced: bool,
        lambda_context: object | None, timeout: float, memo: dict[str, Any],
        level: int = logging.WARNING) -> Detection:
    """One detection with its own HTTP session and time budget."""
    with MetadataHttp(timeout, budget=timeout * BUDGET_PER_TIMEOUT) as http:
        ctx = FetchContext(params, environ, http, lambda_context=lambda_context, memo=memo)
        return detect(ctx, names, forced=forced, level=level)


def fetch(params: Params, environ: Mapping[str, str], *, lambda_context: object | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> RuntimeMetadata:
    """Detect where this run executes and describe it; never raises.

    `timeout` bounds each HTTP request (connect and read). For repeated use, prefer
    `MetadataCache`, which remembers the fetcher that worked and the CodeBuild role.
    """
    try:
        return run(params, environ, candidates(params),
                   forced=params.execution_method_type is not None,
                   lambda_context=lambda_context, timeout=timeout, memo={}).metadata
    except Exception as error:
        LOG.warning("runtime metadata detection failed (%s): sending generic runtime "
                    "metadata", _describe(error))
        return generic.metadata()
