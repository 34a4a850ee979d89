"""Status values from the command reach the server only in a shape it can store.

The class of input: whatever a local program sends to the status port — JSON with NaN and
infinities, integers beyond 64 bits, texts longer than the server's columns, lone
surrogates, NUL characters, nesting deeper than any parser follows — and a server that
refuses a status-bearing update with a 400 anyway. The outcome is always the same: no
crash of the reporter, the values fixed or dropped with one warning per kind of problem,
and heartbeats and the final report delivered whatever the values were.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.bounds import EVENT_TIMEOUT, EXIT_TIMEOUT
from helpers.fake_cloudreactor import TASK_EXECUTION_PATH, FakeCloudReactor, Respond
from helpers.fake_cloudreactor.limits import field_errors
from helpers.runner import clean_env
from pwsup.supervisor.reporting.sanitize import (
    LAST_STATUS_MESSAGE_MAX,
    METADATA_MAX_DEPTH,
    Sanitizer,
)
from pwsup.supervisor.reporting.status_listener import StatusParser

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from helpers.runner import Running

pytestmark = pytest.mark.hostile

PWSUP = str(Path(sys.executable).parent / "pwsup")
TASK = "sanitising-task"

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(min_value=-(2 ** 80),
                                                          max_value=2 ** 80)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30)
status_fields = st.fixed_dictionaries({}, optional={
    "success_count": st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    "error_count": st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    "last_status_message": st.text(max_size=3000) | st.just("a\0b\ud800" * 1500),
    "other_runtime_metadata": st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    "last_app_heartbeat_at": st.text(max_size=30) | st.just("2026-01-02T03:04:05"),
})


@given(status_fields)
@settings(max_examples=300, deadline=None)
def test_sanitised_values_are_what_the_server_stores(fields: dict[str, Any]) -> None:
    """Whatever the values, what is left is strict JSON the server's validators accept."""
    warnings: list[str] = []
    cleaned = Sanitizer(warnings.append).fields(fields)
    json.dumps(cleaned, allow_nan=False).encode("utf-8")  # strict JSON, UTF-8 encodable
    assert field_errors(cleaned) == {}
    assert len(warnings) == len(set(warnings))
    message = cleaned.get("last_status_message")
    assert message is None or len(message) <= LAST_STATUS_MESSAGE_MAX


def test_each_kind_of_problem_is_warned_about_once() -> None:
    warnings: list[str] = []
    sanitizer = Sanitizer(warnings.append)
    for _ in range(50):
        sanitizer.fields({"success_count": 2 ** 70, "last_status_message": "x" * 5000,
                          "other_runtime_metadata": {"a": math.nan, "b": "\0", "c": "\ud800"}})
    assert len(warnings) == 5, warnings


def test_deep_nesting_is_cut() -> None:
    deep: object = 1
    for _ in range(METADATA_MAX_DEPTH * 3):
        deep = {"d": deep}
    cleaned = Sanitizer(lambda _w: None).fields({"other_runtime_metadata": deep})
    depth, value = 0, cleaned["other_runtime_metadata"]
    while isinstance(value, dict) and value:
        depth, value = depth + 1, value["d"]
    assert depth <= METADATA_MAX_DEPTH


@pytest.mark.parametrize("datagram", [
    b"[" * 60000 + b"\n", b'{"other_runtime_metadata": ' + b"[" * 60000 + b"\n",
    b"{" * 30000 + b"\n", b'{"a":' * 20000 + b"\n"])
def test_a_datagram_nested_beyond_the_parser_is_dropped_not_a_crash(datagram: bytes) -> None:
    warnings: list[str] = []
    parser = StatusParser(65536, warnings.append)
    assert parser.feed(datagram) == {}
    assert parser.feed(b'{"success_count": 3}\n') == {"success_count": 3}
    assert warnings


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_the_parser_takes_any_bytes(datagram: bytes) -> None:
    fields = StatusParser(65536, lambda _w: None).feed(datagram + b"\n")
    assert isinstance(fields, dict)


# -- end to end: pwsup against the fake server ----------------------------------------------

HOSTILE_SENDER = r"""
    import os, socket, sys
    port = int(os.environ["PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT"])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for line in (
        '{"success_count": 100000000000000000000000, "error_count": 1}',
        '{"last_status_message": "' + "m" * 5000 + '"}',
        '{"other_runtime_metadata": {"nan": NaN, "inf": Infinity, "ok": 1, "nul": "a\\u0000b",'
        ' "lone": "x\\ud800y"}}',
        '{"last_app_heartbeat_at": "not a time", "expected_count": 7}',
    ):
        s.sendto(line.encode() + b"\n", ("127.0.0.1", port))
    print("sent", flush=True)
    sys.stdin.readline()
    """


@pytest.fixture
def api() -> Iterator[FakeCloudReactor]:
    with FakeCloudReactor() as fake:
        fake.create_task(TASK)
        yield fake


def _pwsup(start: Callable[..., Running], api: FakeCloudReactor, code: str,
           *options: str) -> Running:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    args = [PWSUP, "-n", TASK, "--api-retry-delay", "0.2", "--api-request-timeout", "2",
            "--api-error-timeout", "10", "--api-final-update-timeout", "10",
            "--api-resume-delay", "600", "--enable-status-update-listener",
            "--status-update-socket-port", port, *options,
            "--", sys.executable, "-c", textwrap.dedent(code)]
    return start(args, env=clean_env({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                                      "PROC_WRAPPER_API_KEY": api.api_key}),
                 stdin=subprocess.PIPE)


def _final(api: FakeCloudReactor) -> dict[str, Any]:
    (uuid,) = api.executions
    return api.execution(uuid)


def test_hostile_datagrams_are_fixed_and_the_run_is_reported(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    run = _pwsup(start, api, HOSTILE_SENDER, "--status-update-interval", "0.2")
    run.expect("sent")
    api.wait_for(lambda r: r.method == "PATCH" and r.get("expected_count") == 7,
                 timeout=EVENT_TIMEOUT)
    run.close_stdin()
    assert run.wait(EXIT_TIMEOUT) == 0, run.describe()
    stored = _final(api)
    assert stored["status"] == "SUCCEEDED"
    assert stored["success_count"] is None  # beyond 64 bits: dropped
    assert stored["error_count"] == 1
    assert stored["expected_count"] == 7
    assert stored["last_status_message"] == "m" * LAST_STATUS_MESSAGE_MAX
    metadata = dict(stored["other_runtime_metadata"])
    metadata.pop("pwsup_usage")  # what the attempt cost (docs/protocol.md), beside them
    assert metadata == {"ok": 1, "nul": "ab", "lone": "x?y"}
    assert all(r.response_status in (201, 204) for r in api.requests), api.requests
    assert api.violations == []
    warnings = [line for line in run.stderr.splitlines() if "status update fixed" in line]
    assert len(warnings) == len(set(warnings)) >= 4, run.stderr


STATUS_THEN_WAIT = r"""
    import sys
    from pwsup import StatusUpdater
    with StatusUpdater() as updater:
        updater.send_update(success_count=5, last_status_message="refused")
    print("sent", flush=True)
    sys.stdin.readline()
    """


def test_a_refused_status_update_does_not_cost_the_heartbeat(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """A 400 on an update with status values: the same update goes again at once without
    them (updates do not pause for --api-resume-delay), and later ones flow."""
    api.script("PATCH", TASK_EXECUTION_PATH, Respond(400))
    run = _pwsup(start, api, STATUS_THEN_WAIT, "--status-update-interval", "0.2")
    run.expect("sent")
    refused = api.wait_for(lambda r: r.method == "PATCH" and r.response_status == 400,
                           timeout=EVENT_TIMEOUT)
    assert refused.get("success_count") == 5
    after = api.wait_for(lambda r: r.method == "PATCH" and r.response_status == 204
                         and r.timestamp > refused.timestamp, timeout=EVENT_TIMEOUT)
    assert after.get("status") == "RUNNING"
    assert "success_count" not in after.json
    run.close_stdin()
    assert run.wait(EXIT_TIMEOUT) == 0, run.describe()
    assert _final(api)["status"] == "SUCCEEDED"
    assert api.violations == []


def test_a_refused_final_report_goes_again_without_status_values(
        api: FakeCloudReactor, start: Callable[..., Running]) -> None:
    """Status values riding on the final report, refused with a 400: the outcome is still
    delivered, without them."""
    run = _pwsup(start, api, STATUS_THEN_WAIT)  # no interval: values wait for the final report
    run.expect("sent")
    api.script("PATCH", TASK_EXECUTION_PATH, Respond(400))
    run.close_stdin()
    assert run.wait(EXIT_TIMEOUT) == 0, run.describe()
    finals = [r for r in api.requests if r.method == "PATCH" and r.get("status") == "SUCCEEDED"]
    assert [r.response_status for r in finals] == [400, 204], api.requests
    assert finals[0].get("success_count") == 5
    assert "success_count" not in finals[1].json
    assert _final(api)["status"] == "SUCCEEDED"
    assert api.violations == []
