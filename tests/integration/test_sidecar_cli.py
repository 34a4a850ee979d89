"""ECS sidecar mode through the CLI: the main container's exit code, read from the task
metadata, becomes pwsup's exit code — found by polling, with no refresh interval set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.test_runtime_metadata import (  # noqa: F401 - fixtures
    ECS_PATH,
    EcsAgent,
    FakeServer,
    ecs_agent,
    serve,
)

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT

PWSUP = str(Path(sys.executable).parent / "pwsup")


def test_sidecar_reports_the_main_containers_exit_code(
    ecs_agent: tuple[EcsAgent, FakeServer],  # noqa: F811 - the imported fixture
) -> None:
    """No command: pwsup polls every --process-check-interval and exits with ExitCode."""
    agent, server = ecs_agent
    del agent.task["Containers"][0]["ExitCode"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROC_WRAPPER_", "PWSUP_"))}
    env["ECS_CONTAINER_METADATA_URI_V4"] = server.url + ECS_PATH
    process = subprocess.Popen(
        [PWSUP, "--main-container-name", "etl", "--monitor-container-name", "monitor",
         "--process-check-interval", "0.1"], env=env, stderr=subprocess.PIPE)
    try:
        # The fake agent has no event to wait on: poll its request list, with a deadline.
        procs.wait_until(lambda: sum(p.endswith("/task") for _, p, _ in server.requests) >= 2,
                         EVENT_TIMEOUT, "pwsup to poll the task metadata twice")
        assert process.poll() is None, "pwsup must wait for the main container"
        agent.task["Containers"][0]["ExitCode"] = 3
        _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 3, stderr.decode()
    assert b"main container exited with code 3" in stderr
