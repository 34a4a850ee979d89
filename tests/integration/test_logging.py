"""pwsup's own log lines: text and JSON formats, timestamps, and redaction of the API key and
the Rollbar token at every level."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.fake_cloudreactor import FakeCloudReactor, Respond
from tests.helpers.fake_rollbar import FakeRollbar

PWSUP = str(Path(sys.executable).parent / "pwsup")
ROLLBAR_TOKEN = "rollbar-canary-token-5b1e0c9d2a7f4e3b"


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with FakeCloudReactor() as server:
        server.create_task("log-task")
        yield server


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROC_WRAPPER_", "PWSUP_"))}
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PWSUP, *args, "--", sys.executable, "-c", "print('out')"],
                          env=env, capture_output=True, text=True, timeout=30, check=False)


def test_json_lines_parse_and_carry_the_execution_uuid(api: FakeCloudReactor) -> None:
    """--log-format json: every stderr line is an object with the stable keys."""
    result = run(["-n", "log-task", "--log-format", "json", "-l", "DEBUG"],
                 clean_env(PROC_WRAPPER_API_BASE_URL=api.base_url,
                           PROC_WRAPPER_API_KEY=api.api_key))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records
    for record in records:
        assert set(record) == {"timestamp", "level", "message", "process", "execution_uuid"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}Z", record["timestamp"])
    uuid = next(iter(api.executions))
    summary = next(r for r in records if r["message"].startswith("Task 'log-task' succeeded"))
    assert summary["execution_uuid"] == uuid
    assert summary["level"] == "INFO"
    assert summary["process"] == "parent"
    assert {r["process"] for r in records} >= {"parent", "reporter"}
    assert result.stdout == "out\n"


def test_text_lines_with_and_without_timestamps_offline() -> None:
    """The text format has the PWSUP prefix; --exclude-timestamps-in-log works offline too."""
    with_time = run([], clean_env()).stderr.splitlines()[-1]
    without = run(["--exclude-timestamps-in-log"], clean_env()).stderr.splitlines()[-1]
    assert re.match(r"PWSUP: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}Z INFO: Task ", with_time)
    assert re.match(r"PWSUP: INFO: Task ", without)


def test_api_key_and_rollbar_token_never_appear_at_debug(api: FakeCloudReactor) -> None:
    """Neither secret reaches stderr or stdout at DEBUG, even when requests fail and Rollbar
    is told about them."""
    with FakeRollbar(access_token=ROLLBAR_TOKEN) as rollbar:
        api.always("PATCH", Respond(400))
        result = run(["-n", "log-task", "-l", "DEBUG", "--rollbar-access-token", ROLLBAR_TOKEN,
                      "--rollbar-endpoint", rollbar.endpoint, "--rollbar-retry-delay", "0.1"],
                     clean_env(PROC_WRAPPER_API_BASE_URL=api.base_url,
                               PROC_WRAPPER_API_KEY=api.api_key))
        rollbar.wait_for_items(1, timeout=10)
        sent = b"".join(r.raw for r in rollbar.requests)
    assert result.returncode == 0
    assert "DEBUG" in result.stderr
    for secret in (api.api_key, ROLLBAR_TOKEN):
        assert secret not in result.stderr
        assert secret not in result.stdout
        assert secret.encode() not in sent
    assert "***" in result.stderr  # the configuration dump shows them redacted
