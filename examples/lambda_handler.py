"""An AWS Lambda function whose invocations are monitored by CloudReactor, via pwsup's
embedded mode (see docs/operations.md, "AWS Lambda").

The code is what it was with proc_wrapper, except for the import: `ProcWrapper` runs the
function, retries it when it raises, and reports each invocation (start, status updates,
result or failure) to the API server.

Configuration of the function (environment variables):

    PROC_WRAPPER_API_KEY                         the CloudReactor API key; better, resolve it
                                                 from AWS Secrets Manager at cold start:
    PROC_WRAPPER_API_KEY_FOR_PROC_WRAPPER_TO_RESOLVE=arn:aws:secretsmanager:...:secret:cr-key
    PROC_WRAPPER_DEPLOYMENT                      e.g. production

Without an API key the function simply runs, unreported (handy for local tests:
`python lambda_handler.py`). Packaging: put pwsup and its dependencies in the deployment
package or a layer (`pip install --target package/ .` from a checkout, plus boto3 only if
secrets come from AWS and the runtime's own boto3 is not wanted).
"""

from __future__ import annotations

import json
from typing import Any

from pwsup.compat import ProcWrapper, ProcWrapperParams


def export(wrapper: ProcWrapper, data: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The work. `data` is the Lambda event; `config` the resolved configuration (from
    `--config` locations, here PROC_WRAPPER_CONFIG_LOCATIONS); the return value is sent to
    the server as the execution's output value."""
    items = list(data.get("items", [])) if isinstance(data, dict) else []
    exported = 0
    for item in items:
        exported += 1  # ... export `item` ...
        wrapper.update_status(success_count=exported, expected_count=len(items),
                              last_status_message=f"exported {item}")
    return {"exported": exported, "batch": config.get("batch_name", "default")}


def lambda_handler(event: Any, context: Any) -> Any:
    params = ProcWrapperParams()
    params.task_name = "lambda-export"
    params.auto_create_task = True  # a passive Task: CloudReactor monitors, never starts it
    params.auto_create_task_run_environment_name = "production"
    params.process_max_retries = 1  # a second try when `export` raises
    params.process_retry_delay = 2  # seconds; keep retries well inside the Lambda timeout
    # `runtime_context` gives pwsup the invocation's details (function, request id, ...).
    wrapper = ProcWrapper(params=params, runtime_context=context)
    return wrapper.managed_call(export, event)


if __name__ == "__main__":
    print(json.dumps(lambda_handler({"items": ["a", "b", "c"]}, None)))
