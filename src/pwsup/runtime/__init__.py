"""Runtime metadata: where a run executes (ECS, Lambda, CodeBuild, EC2, Kubernetes, other).

The CloudReactor server is told what a Task Execution ran on (and, for auto-created
Tasks, what the Task runs on) so it can show it and, for AWS execution methods, start the
Task again the same way. This package finds that out, in the field layout the API takes
in the start request and the updates, and re-implements proc_wrapper 6.0.2's detection
with its defects fixed: the region is actually found (proc_wrapper looked it up where no
fetcher put it), ECS sidecar exit codes are seen without a refresh interval (proc_wrapper
waited forever without one), requests have short timeouts (it allowed 60 s each), and STS
is asked only once (it asked at every fetch).

Public API:

- `fetch(params, environ, *, lambda_context=None, timeout=2.0) -> RuntimeMetadata`: one
  detection; never raises, falls back to generic metadata (see `detect`).
- `MetadataCache(params, environ, *, lambda_context=None, timeout=2.0, clock=...)`:
  `get()`, `refresh(force=False)`, `current`, `generation` (see `cache`).
- `RuntimeMetadata`: the result (see `model`).

One module per concern: `detect` (order and fallback), `cache`, `http` (requests with
timeouts), `model`, `regions`, and one module per fetcher (`generic`, `kubernetes`, `ecs` +
`ecs_containers`, `aws_lambda`, `codebuild` + `sts`, `ec2` + `imds`).
"""

from __future__ import annotations

from pwsup.runtime.cache import MetadataCache
from pwsup.runtime.detect import DEFAULT_TIMEOUT, fetch
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.model import RuntimeMetadata

__all__ = ["DEFAULT_TIMEOUT", "MetadataCache", "MetadataError", "RuntimeMetadata", "fetch"]
