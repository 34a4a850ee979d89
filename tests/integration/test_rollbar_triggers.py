"""Rollbar reports from a real pwsup run: one item per trigger, and a broken Rollbar changes
nothing about the run (exit code, timing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import fake_cloudreactor as api_fake
from helpers.bounds import EVENT_TIMEOUT, SLACK
from helpers.fake_cloudreactor import FakeCloudReactor
from helpers.fake_rollbar import FakeRollbar, Hang

PWSUP = str(Path(sys.executable).parent / "pwsup")
ROLLBAR_TIMEOUT = 30.0
"""--rollbar-timeout (its default): a hung Rollbar request lasts longer than any bound here,
so a run that waited for one would fail."""
EXIT_FLUSH_CAP = 1.0
"""How long the reporter gives Rollbar to take its last reports when the run is over."""


@pytest.fixture
def servers() -> Iterator[tuple[FakeCloudReactor, FakeRollbar]]:
    with FakeCloudReactor() as api, FakeRollbar() as rollbar:
        api.create_task("rollbar-task")
        yield api, rollbar


def run(api: FakeCloudReactor, rollbar: FakeRollbar, *args: str,
        code: str = "pass") -> tuple[subprocess.CompletedProcess[bytes], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROC_WRAPPER_", "PWSUP_"))}
    env.update(PROC_WRAPPER_API_BASE_URL=api.base_url, PROC_WRAPPER_API_KEY=api.api_key,
               PROC_WRAPPER_ROLLBAR_ACCESS_TOKEN=rollbar.access_token,
               PROC_WRAPPER_ROLLBAR_ENDPOINT=rollbar.endpoint,
               PROC_WRAPPER_ROLLBAR_RETRY_DELAY_SECONDS="0.1",
               PROC_WRAPPER_ROLLBAR_TIMEOUT_SECONDS=f"{ROLLBAR_TIMEOUT:g}")
    started = time.monotonic()
    result = subprocess.run(
        [PWSUP, "-n", "rollbar-task", "-d", "staging", "--api-retry-delay", "0.1",
         "--api-request-timeout", "1", *args, "--", sys.executable, "-c", code],
        env=env, capture_output=True, timeout=30, check=False)
    return result, time.monotonic() - started


def messages(rollbar: FakeRollbar) -> list[str]:
    return [str(r.message["body"]) for r in rollbar.items]


def test_start_refused_reports_the_response_and_the_unreported_start(
    servers: tuple[FakeCloudReactor, FakeRollbar]
) -> None:
    """A 400 on the start request: one item for the answer, one for the unreported run."""
    api, rollbar = servers
    api.script("POST", api_fake.TASK_EXECUTIONS_PATH, api_fake.Respond(400))
    result, _ = run(api, rollbar)
    assert result.returncode == 0, result.stderr.decode()
    items = rollbar.wait_for_items(2, timeout=10)
    texts = messages(rollbar)
    assert len(items) == 2
    assert any(t.startswith("Got error response code = 400") for t in texts)
    assert any(t.startswith("Exited before API Server notified of start") for t in texts)
    item = items[0].item
    assert item["environment"] == "staging"
    assert item["body"]["message"]["task"]["name"] == "rollbar-task"
    assert api.api_key not in b"".join(r.raw for r in rollbar.requests).decode()


def test_final_update_not_delivered_is_reported(
    servers: tuple[FakeCloudReactor, FakeRollbar]
) -> None:
    """A final update that cannot be delivered produces its own item, with the execution."""
    api, rollbar = servers
    api.always("PATCH", api_fake.Respond(400))
    result, _ = run(api, rollbar, code="import sys; sys.exit(3)")
    assert result.returncode == 3
    rollbar.wait_for_items(2, timeout=10)
    texts = messages(rollbar)
    assert any("final status could not be delivered" in t for t in texts), texts
    execution = next(r.execution_uuid for r in api.requests if r.method == "PATCH")
    final = next(r for r in rollbar.items if "final status" in str(r.message["body"]))
    assert final.message["task_execution"]["uuid"] == execution


def test_hanging_rollbar_changes_no_exit_code_and_delays_little(
    servers: tuple[FakeCloudReactor, FakeRollbar]
) -> None:
    """With Rollbar hung, the run ends with the command's code within the flush cap."""
    api, rollbar = servers
    rollbar.always(Hang())
    api.script("POST", api_fake.TASK_EXECUTIONS_PATH, api_fake.Respond(400))
    try:
        result, elapsed = run(api, rollbar, code="import sys; sys.exit(4)")
    finally:
        rollbar.stop_faults()
    assert result.returncode == 4
    # The whole run, from pwsup's start until its output closed (the reporter's exit).
    assert elapsed < EXIT_FLUSH_CAP + SLACK
    rollbar.wait_for_requests(1, timeout=EVENT_TIMEOUT)
