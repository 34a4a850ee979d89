"""Runtime metadata in what pwsup reports: ECS metadata served over real HTTP reaches the
creation and final request bodies, and a hung metadata endpoint delays neither SIGTERM nor
the command's start beyond the documented bound."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers.bounds import SLACK
from tests.helpers.fake_cloudreactor import FakeCloudReactor
from tests.helpers.runner import Running
from tests.integration.test_runtime_metadata import (  # noqa: F401 - the fixture
    FakeServer,
    load,
    serve,
)

from pwsup.supervisor.reporting.api_sink import METADATA_TIMEOUT

PWSUP = str(Path(sys.executable).parent / "pwsup")
ECS_PATH = "/v4/abc-1"
START_BOUND = 4 * METADATA_TIMEOUT
"""A whole metadata fetch is cut off after four request timeouts (pwsup.runtime)."""


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with FakeCloudReactor() as server:
        yield server


def environment(api: FakeCloudReactor, metadata_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROC_WRAPPER_", "PWSUP_", "KUBERNETES_", "ECS_"))}
    env.update(PROC_WRAPPER_API_BASE_URL=api.base_url, PROC_WRAPPER_API_KEY=api.api_key,
               ECS_CONTAINER_METADATA_URI_V4=metadata_url)
    return env


def test_ecs_metadata_reaches_creation_and_final_bodies(
    api: FakeCloudReactor, serve: Callable[..., FakeServer],  # noqa: F811
) -> None:
    """Field by field: execution view in the POST and the final PATCH, Task view in `task`."""
    task = load("ecs_task_single.json")
    documents = {f"{ECS_PATH}/task": task, ECS_PATH: task["Containers"][0]}
    server = serve(lambda method, path, headers: (200, json.dumps(documents[path])))
    result = subprocess.run(
        [PWSUP, "-n", "ecs-job", "-a", "-d", "prod", "--send-hostname", "--", "true"],
        env=environment(api, server.url + ECS_PATH), capture_output=True, timeout=30,
        check=False)
    assert result.returncode == 0, result.stderr.decode()
    post, final = api.requests[0].json, api.requests[-1].json
    assert post["execution_method_type"] == "AWS ECS"
    assert post["infrastructure_type"] == "AWS"
    assert post["allocated_cpu_units"] == 256
    assert post["allocated_memory_mb"] == 512
    details = post["execution_method_details"]
    assert details["task_arn"] == task["TaskARN"]
    assert details["cluster_arn"] == task["Cluster"]
    assert details["task_definition_arn"] == \
        "arn:aws:ecs:us-west-2:111122223333:task-definition/nightly-report:26"
    assert details["launch_type"] == "FARGATE"
    assert post["infrastructure_settings"]["network"]["region"] == "us-west-2"
    assert post["task"]["execution_method_type"] == "AWS ECS"
    assert "task_arn" not in post["task"]["execution_method_capability_details"]
    assert post["hostname"] == post["ip_v4_addresses"][0]
    assert final["status"] == "SUCCEEDED"
    assert final["execution_method_type"] == "AWS ECS"
    assert final["execution_method_details"]["task_arn"] == task["TaskARN"]
    assert api.violations == []


@pytest.fixture
def hung_metadata() -> Iterator[str]:
    """A metadata endpoint that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{ECS_PATH}"


def test_hung_metadata_delays_the_start_at_most_the_bound_and_never_sigterm(
    api: FakeCloudReactor, hung_metadata: str,
) -> None:
    """The command starts within the bound (generic metadata is reported), and SIGTERM
    reaches it at once."""
    code = ("import os, signal, time\n"
            "def on_term(signum, frame):\n"
            "    os.write(1, f'SIGTERM {time.monotonic()}\\n'.encode())\n"
            "    os._exit(0)\n"
            "signal.signal(signal.SIGTERM, on_term)\n"
            "os.write(1, f'ready {time.monotonic()}\\n'.encode())\n"
            "time.sleep(30)\n")
    with Running([PWSUP, "-n", "job", "-a", "-d", "prod", "--", sys.executable, "-c", code],
                 environment(api, hung_metadata)) as pwsup:
        child_start = float(pwsup.expect("ready ", timeout=START_BOUND + SLACK).split()[1])
        assert child_start - pwsup.started < START_BOUND + SLACK, pwsup.describe()
        sent = time.monotonic()
        pwsup.signal(signal.SIGTERM)
        received = float(pwsup.expect("SIGTERM ").split()[1])
        assert pwsup.wait() == 0, pwsup.describe()  # the command handled SIGTERM
    # Nothing documented delays forwarding SIGTERM, nor the final report to a server that
    # answers at once.
    assert received - sent < SLACK
    assert pwsup.exited_at is not None
    assert pwsup.exited_at - sent < SLACK
    assert api.requests[0].json["execution_method_type"] == "Unknown"
