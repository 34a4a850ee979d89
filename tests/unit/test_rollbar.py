"""RollbarReporter against a real HTTP fake (tests/helpers/fake_rollbar.py).

Pinned here: one item per report with upstream's fields, retries (503, 429, resets and read
timeouts retried; 400 not; 401/403 switch reporting off), a hanging Rollbar that never
blocks the caller and bounds flush(), scrubbing of values and secrets from what goes over
the wire, and no traffic without a token.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helpers.fake_rollbar import FakeRollbar, Hang, Reset, Respond
from pwsup._version import __version__
from pwsup.config.params import Params
from pwsup.supervisor.reporting.rollbar import MAX_QUEUED, RollbarReporter
from pwsup.util.log import DEBUG, WARNING, Log

EXECUTION_UUID = "7f1e6a3c-4b2d-4c8e-9a10-3d5f2b6e8c01"
NOW = 1_700_000_000.25
HOST = "test-host-1"
SECRET = "resolved-secret-value-42"
API_KEY = "cr-api-key-0123456789abcdef"
WAIT = 5.0
"""Upper bound for things that happen at once; only reached when a test fails."""


class RecordingLog(Log):
    """A Log that keeps its (scrubbed) lines instead of writing them to stderr."""

    def __init__(self, *, redact: bool = True) -> None:
        super().__init__("test", DEBUG, redact=redact)
        self.lines: list[tuple[int, str]] = []

    def emit(self, level: int, message: str, when: float | None = None) -> None:
        if level >= self.level:
            self.lines.append((level, self.scrub(message)))

    def warnings(self) -> list[str]:
        return [message for level, message in self.lines if level >= WARNING]


@pytest.fixture
def rollbar() -> Iterator[FakeRollbar]:
    with FakeRollbar() as fake:
        yield fake


MakeReporter = Callable[..., tuple[RollbarReporter, RecordingLog]]


@pytest.fixture
def make_reporter(rollbar: FakeRollbar) -> Iterator[MakeReporter]:
    """Build reporters against the fake (fast retries); close them and join their threads."""
    made: list[RollbarReporter] = []

    def make(*, log: RecordingLog | None = None, include_values: bool = False,
             execution_uuid_getter: Callable[[], str | None] = lambda: EXECUTION_UUID,
             **changes: Any) -> tuple[RollbarReporter, RecordingLog]:
        values: dict[str, Any] = {
            "rollbar_access_token": rollbar.access_token, "rollbar_endpoint": rollbar.endpoint,
            "rollbar_retries": 2, "rollbar_retry_delay": 0.05, "rollbar_timeout": 2.0,
            **changes}
        log = log or RecordingLog()
        reporter = RollbarReporter(Params(**values), log,
                                   execution_uuid_getter=execution_uuid_getter,
                                   include_values=include_values, clock=lambda: NOW,
                                   hostname=HOST)
        made.append(reporter)
        return reporter, log

    yield make
    for reporter in made:
        reporter.close(timeout=0)  # closed first, so a released request is not retried
    rollbar.stop_faults()  # also answers a request that had not arrived yet
    for reporter in made:
        assert reporter.close(timeout=WAIT), "the Rollbar thread did not end"


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# ---- the item ---------------------------------------------------------------------------

def test_one_item_per_report_with_upstream_fields(rollbar: FakeRollbar,
                                                 make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter(
        deployment="staging", task_name="nightly-etl",
        task_uuid="0b4f0d6e-0d4c-4d5e-8f2a-6a3c1e9b7d20", task_version_number=12,
        task_version_text="1.2.0", task_version_signature="a1b2c3d4",
        task_instance_metadata={"shard": 3})
    assert reporter.enabled
    data = {"request": {"url": "https://api.example/x/", "method": "PATCH",
                        "body": {"status": "FAILED"}},
            "response": {"status_code": 400, "body": "bad request"}}

    reporter.report("Got error response code = 400", data)

    assert reporter.flush(WAIT)
    (request,) = rollbar.wait_for_items(1, WAIT)
    assert len(rollbar.requests) == 1
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["X-Rollbar-Access-Token"] == rollbar.access_token
    assert request.json == {"data": {
        "environment": "staging",
        "body": {"message": {
            "body": "Got error response code = 400",
            "task": {"uuid": "0b4f0d6e-0d4c-4d5e-8f2a-6a3c1e9b7d20", "name": "nightly-etl",
                     "version_number": 12, "version_text": "1.2.0",
                     "version_signature": "a1b2c3d4"},
            "task_execution": {"uuid": EXECUTION_UUID},
            "task_instance_metadata": {"shard": 3},
            "wrapper_version": __version__,
            "data": data,
        }},
        "level": "error",
        "timestamp": NOW,
        "code_version": "a1b2c3d4",
        "context": "pwsup",
        "server": {"host": HOST},
    }}
    assert rollbar.access_token.encode() not in request.raw
    assert log.warnings() == []


def test_defaults_and_current_execution_uuid(rollbar: FakeRollbar,
                                            make_reporter: MakeReporter) -> None:
    current: list[str | None] = [None]
    reporter, _ = make_reporter(execution_uuid_getter=lambda: current[0])

    reporter.report("before the execution exists")
    current[0] = EXECUTION_UUID
    reporter.report("after")

    first, second = rollbar.wait_for_items(2, WAIT)
    assert first.item["environment"] == "Unknown"
    assert first.item["code_version"] is None
    assert first.message["task"] == dict.fromkeys(
        ("uuid", "name", "version_number", "version_text", "version_signature"))
    assert first.message["task_execution"] == {"uuid": None}
    assert first.message["data"] is None
    assert second.message["body"] == "after"
    assert second.message["task_execution"] == {"uuid": EXECUTION_UUID}


def test_odd_data_and_a_failing_getter_never_raise(rollbar: FakeRollbar,
                                                   make_reporter: MakeReporter) -> None:
    def broken() -> str | None:
        raise RuntimeError("no uuid")

    reporter, _ = make_reporter(execution_uuid_getter=broken)
    odd: dict[Any, Any] = {"nan": math.nan, "raw": b"bytes\xff", "object": object(),
                           "tuple": (1, 2), 3: "int key"}
    reporter.report("odd", odd)

    (request,) = rollbar.wait_for_items(1, WAIT)
    data = request.message["data"]
    assert data["nan"] == "nan"
    assert data["raw"] == "bytes\ufffd"
    assert data["object"].startswith("<object object")
    assert data["tuple"] == [1, 2]
    assert data["3"] == "int key"
    assert request.message["task_execution"] == {"uuid": None}


# ---- retries ----------------------------------------------------------------------------

def test_retries_503_then_succeeds(rollbar: FakeRollbar, make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter(rollbar_retries=2, rollbar_retry_delay=0.1)
    rollbar.script(Respond(503), Respond(503))

    reporter.report("boom")

    assert reporter.flush(WAIT)
    requests = rollbar.requests
    assert [r.status for r in requests] == [503, 503, 200]
    assert len({r.raw for r in requests}) == 1  # the same item each time
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(requests)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert log.warnings() == []


@pytest.mark.parametrize("failure", [Respond(429), Respond(500), Reset()],
                         ids=["429", "500", "reset"])
def test_retries_transient_failures(rollbar: FakeRollbar, make_reporter: MakeReporter,
                                    failure: Respond | Reset) -> None:
    reporter, log = make_reporter()
    rollbar.script(failure)

    reporter.report("boom")

    assert reporter.flush(WAIT)
    assert len(rollbar.requests) == 2
    assert len(rollbar.items) == 1
    assert log.warnings() == []


def test_read_timeout_is_retried(rollbar: FakeRollbar, make_reporter: MakeReporter) -> None:
    """A read timeout is retried like any network error (upstream let it escape as an
    exception from its Rollbar code)."""
    reporter, log = make_reporter(rollbar_timeout=0.2)
    rollbar.script(Hang())

    reporter.report("boom")

    assert reporter.flush(WAIT)
    assert [r.status for r in rollbar.requests] == [None, 200]
    assert log.warnings() == []


def test_no_retry_on_400_and_later_items_still_sent(rollbar: FakeRollbar,
                                                    make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter()
    rollbar.script(Respond(400))

    reporter.report("rejected item")
    assert reporter.flush(WAIT)
    assert [r.status for r in rollbar.requests] == [400]
    (warning,) = log.warnings()
    assert "rejected item" in warning
    assert "HTTP 400" in warning
    assert "1 attempt" in warning

    reporter.report("next item")
    assert reporter.flush(WAIT)
    assert [r.status for r in rollbar.requests] == [400, 200]
    assert reporter.enabled


def test_gives_up_after_the_retries_then_goes_on(rollbar: FakeRollbar,
                                                 make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter(rollbar_retries=1)
    rollbar.script(Respond(503), Respond(502))

    reporter.report("lost item")
    reporter.report("next item")

    assert reporter.flush(WAIT)
    assert [r.status for r in rollbar.requests] == [503, 502, 200]
    assert rollbar.items[0].message["body"] == "next item"
    (warning,) = log.warnings()
    assert "lost item" in warning
    assert "2 attempt(s)" in warning


def test_rejected_token_switches_reporting_off(rollbar: FakeRollbar,
                                               make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter(rollbar_access_token="not-the-configured-token")

    reporter.report("first")
    assert reporter.flush(WAIT)
    assert [r.status for r in rollbar.requests] == [403]
    assert not reporter.enabled
    assert any("rejected the access token" in w for w in log.warnings())

    reporter.report("second")
    assert reporter.flush(WAIT)
    assert len(rollbar.requests) == 1


# ---- a hanging Rollbar ------------------------------------------------------------------

def test_hanging_rollbar_never_blocks_the_caller(rollbar: FakeRollbar,
                                                 make_reporter: MakeReporter) -> None:
    reporter, _ = make_reporter(rollbar_timeout=30.0, rollbar_retry_delay=30.0)
    rollbar.always(Hang())
    big = {"request": {"url": "https://api.example/", "method": "POST",
                       "body": {"status": "FAILED", "last_status_message": "x" * 50_000}}}

    durations = [_timed(lambda: reporter.report("boom", big)) for _ in range(5)]
    assert max(durations) < 0.05, durations
    rollbar.wait_for_requests(1, WAIT)

    start = time.monotonic()
    assert reporter.flush(0.3) is False
    assert 0.25 <= time.monotonic() - start < 0.3 + 0.5
    assert _timed(lambda: reporter.report("still fine")) < 0.05
    assert len(rollbar.requests) == 1


def test_close_interrupts_a_retry_wait(rollbar: FakeRollbar,
                                       make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter(rollbar_retry_delay=30.0)
    rollbar.always(Respond(503))

    reporter.report("boom")
    rollbar.wait_for_requests(1, WAIT)

    start = time.monotonic()
    assert reporter.close(timeout=WAIT)
    assert time.monotonic() - start < 1.0
    assert len(rollbar.requests) == 1
    assert any("not sent" in w for w in log.warnings())
    reporter.report("after close")  # ignored, no error
    assert reporter.flush(0)


def test_queue_is_bounded(rollbar: FakeRollbar, make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter(rollbar_timeout=30.0)
    rollbar.always(Hang())

    for i in range(MAX_QUEUED + 10):
        reporter.report(f"item {i}")

    drops = [w for w in log.warnings() if "dropping new ones" in w]
    assert len(drops) == 1
    assert "item " in drops[0]
    assert len(rollbar.wait_for_requests(1, WAIT)) == 1


# ---- what never leaves the machine ------------------------------------------------------

def _leaky_data(token: str) -> dict[str, Any]:
    body = {
        "status": "FAILED", "exit_code": 3,
        "input_value": {"customer": "IN-VALUE-MARK"},
        "output_value": "OUT-VALUE-MARK",
        "debug_log_tail": "DEBUG-TAIL-MARK",
        "error_log_tail": "ERROR-TAIL-MARK",
        "other_instance_metadata": {"nested": [{"input_value": "NESTED-IN-MARK"}]},
        "last_status_message": f"connected with {SECRET}",
        "environment": {"ROLLBAR": token},
    }
    return {
        "request": {"url": f"https://api.example/api/v1/task_executions/?k={SECRET}",
                    "method": "PATCH", "body": body,
                    "headers": {"Authorization": f"Bearer {API_KEY}"}},
        "response": {"status_code": 400, "body": json.dumps(
            {"output_value": ["RESP-OUT-MARK"], "detail": "bad value"})},
        "error": {"reason": "x"},
    }


MARKS = (b"IN-VALUE-MARK", b"OUT-VALUE-MARK", b"DEBUG-TAIL-MARK", b"ERROR-TAIL-MARK",
         b"NESTED-IN-MARK", b"RESP-OUT-MARK", b"QUOTED-MARK")


@pytest.mark.parametrize("redact", [True, False], ids=["redacting-log", "log-secrets"])
def test_values_and_secrets_are_scrubbed(rollbar: FakeRollbar, make_reporter: MakeReporter,
                                         redact: bool) -> None:
    log = RecordingLog(redact=redact)
    log.add_secret(SECRET)
    log.add_secret(rollbar.access_token)
    log.add_secret(API_KEY)
    reporter, _ = make_reporter(log=log, api_key=API_KEY)
    message = (f"Got error response code = 400 using {API_KEY}, body = "
               "'{\"input_value\": \"QUOTED-MARK\"}'")

    reporter.report(message, _leaky_data(rollbar.access_token))

    (request,) = rollbar.wait_for_items(1, WAIT)
    raw = request.raw
    for mark in MARKS:
        assert mark not in raw
    for key in (b"input_value", b"output_value", b"debug_log_tail", b"error_log_tail"):
        assert key not in raw
    assert rollbar.access_token.encode() not in raw
    assert API_KEY.encode() not in raw
    if redact:
        assert SECRET.encode() not in raw
    data = request.message["data"]
    assert data["request"]["body"]["status"] == "FAILED"
    assert data["request"]["body"]["exit_code"] == 3
    assert data["request"]["body"]["other_instance_metadata"] == {"nested": [{}]}
    assert data["request"]["headers"] == {"Authorization": "Bearer ***"}
    assert data["request"]["body"]["environment"] == {"ROLLBAR": "***"}
    assert json.loads(data["response"]["body"]) == {"detail": "bad value"}
    assert request.message["body"].startswith("Got error response code = 400 using ***, body")


def test_include_values_keeps_values_but_not_secrets(rollbar: FakeRollbar,
                                                     make_reporter: MakeReporter) -> None:
    log = RecordingLog()
    log.add_secret(SECRET)
    reporter, _ = make_reporter(log=log, include_values=True)

    reporter.report("boom", _leaky_data(rollbar.access_token))

    (request,) = rollbar.wait_for_items(1, WAIT)
    assert b"IN-VALUE-MARK" in request.raw
    assert b"RESP-OUT-MARK" in request.raw
    assert SECRET.encode() not in request.raw
    assert rollbar.access_token.encode() not in request.raw


# ---- disabled ---------------------------------------------------------------------------

def test_disabled_without_a_token(rollbar: FakeRollbar, make_reporter: MakeReporter) -> None:
    reporter, log = make_reporter(rollbar_access_token=None)
    assert not reporter.enabled

    reporter.report("boom", {"request": {}})

    assert reporter.flush(0)
    assert rollbar.requests == []
    assert reporter._thread is None  # no thread either
    assert log.lines == []
