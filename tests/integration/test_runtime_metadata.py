"""Runtime metadata over real HTTP: fake ECS metadata and IMDSv2 servers on 127.0.0.1, and
endpoints that hang, to check that detection gives up within its timeout.

The servers are `http.server` instances in threads; the hung endpoint is a listening socket
that never accepts: the kernel completes the TCP handshake, and the request is never read.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.helpers.bounds import SLACK

from pwsup.config.params import Params
from pwsup.runtime import MetadataCache, fetch

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "runtime" / "fixtures"
ECS_PATH = "/v4/9781c248a0a94b2d9a3e5f1c7e7b8c41-3048912217"
TOKEN = "AQAEAIntegrationToken=="
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TIMEOUT = 0.5
"""The request timeout given to fetch(); a hung endpoint must be given up after it (plus
SLACK for a busy machine), never waited for."""
BUDGET = 4 * TIMEOUT
"""A whole fetch's time budget: four request timeouts."""


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class FakeServer:
    """A threaded HTTP server whose answers come from `answer(method, path, headers)`."""

    def __init__(self, answer: Callable[[str, str, dict[str, str]], tuple[int, str]],
                 delay: float = 0.0) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.statuses: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                headers = dict(self.headers.items())
                server.requests.append((self.command, self.path, headers))
                time.sleep(delay)
                status, body = answer(self.command, self.path, headers)
                server.statuses.append(status)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests): nothing to report


            do_GET = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(answer: Callable[[str, str, dict[str, str]], tuple[int, str]],
              delay: float = 0.0) -> FakeServer:
        servers.append(FakeServer(answer, delay))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def hung_url() -> Iterator[str]:
    """An address that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


# -- ECS ---------------------------------------------------------------------------------------

class EcsAgent:
    """The task metadata endpoint of the sidecar fixture task; the task can change."""

    def __init__(self) -> None:
        self.task = load("ecs_task_sidecar.json")
        self.container = load("ecs_container_monitor.json")
        self.status = 200

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        if self.status != 200:
            return self.status, "{}"
        documents = {f"{ECS_PATH}/task": self.task, ECS_PATH: self.container}
        if method != "GET" or path not in documents:
            return 404, "{}"
        return 200, json.dumps(documents[path])


@pytest.fixture
def ecs_agent(serve: Callable[..., FakeServer]) -> tuple[EcsAgent, FakeServer]:
    agent = EcsAgent()
    return agent, serve(agent.answer)


def test_ecs_sidecar_over_http(ecs_agent: tuple[EcsAgent, FakeServer]) -> None:
    _, server = ecs_agent
    metadata = fetch(Params(sidecar_container_mode=True),
                     {"ECS_CONTAINER_METADATA_URI_V4": server.url + ECS_PATH}, timeout=TIMEOUT)

    assert [(m, p) for m, p, _ in server.requests] == [("GET", f"{ECS_PATH}/task"),
                                                      ("GET", ECS_PATH)]
    assert all(h.get("Accept") == "application/json" for _, _, h in server.requests)
    assert metadata.source == "AWS ECS"
    assert metadata.sidecar is True
    assert metadata.main_container_exit_code == 3
    assert metadata.hostname == "192.0.2.3"
    assert metadata.region == "eu-central-1"
    assert metadata.execution["ip_v4_addresses"] == ["192.0.2.3"]
    assert metadata.execution["execution_method_details"]["task_definition_arn"] == \
        "arn:aws:ecs:eu-central-1:444455556666:task-definition/etl-import:7"
    assert metadata.container_env["PROC_WRAPPER_MAIN_CONTAINER_NAME"] == "etl"


def test_ecs_v3_variable(ecs_agent: tuple[EcsAgent, FakeServer]) -> None:
    _, server = ecs_agent
    metadata = fetch(Params(main_container_name="etl", monitor_container_name="monitor"),
                     {"ECS_CONTAINER_METADATA_URI": server.url + ECS_PATH}, timeout=TIMEOUT)
    assert metadata.source == "AWS ECS"
    assert len(server.requests) == 1


def test_sidecar_exit_is_seen_by_polling_without_a_refresh_interval(
        ecs_agent: tuple[EcsAgent, FakeServer]) -> None:
    agent, server = ecs_agent
    del agent.task["Containers"][0]["ExitCode"]
    cache = MetadataCache(Params(sidecar_container_mode=True),
                          {"ECS_CONTAINER_METADATA_URI_V4": server.url + ECS_PATH},
                          timeout=TIMEOUT)
    assert cache.get().main_container_exit_code is None
    assert cache.refresh(force=True).main_container_exit_code is None

    agent.task["Containers"][0]["ExitCode"] = 0
    assert cache.get().main_container_exit_code is None, "not due without an interval"
    assert cache.refresh(force=True).main_container_exit_code == 0
    assert cache.generation == 3


def test_ecs_error_status_falls_back_with_a_warning(
        ecs_agent: tuple[EcsAgent, FakeServer], caplog: pytest.LogCaptureFixture) -> None:
    agent, server = ecs_agent
    agent.status = 503
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = fetch(Params(), {"ECS_CONTAINER_METADATA_URI_V4": server.url + ECS_PATH},
                         timeout=TIMEOUT)
    assert metadata.source == "Generic"
    assert metadata.execution["execution_method_type"] == "Unknown"
    assert "HTTP 503" in caplog.text


def test_failed_refresh_keeps_the_ecs_metadata(ecs_agent: tuple[EcsAgent, FakeServer]) -> None:
    agent, server = ecs_agent
    cache = MetadataCache(Params(sidecar_container_mode=True),
                          {"ECS_CONTAINER_METADATA_URI_V4": server.url + ECS_PATH},
                          timeout=TIMEOUT)
    first = cache.get()
    agent.status = 500
    assert cache.refresh(force=True) is first


# -- EC2 IMDSv2 ---------------------------------------------------------------------------------

class Imds:
    """IMDSv2: a token from PUT, then GETs that must carry it (else 401)."""

    def __init__(self) -> None:
        self.items: dict[str, str] = load("ec2_imds.json")

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        if method == "PUT":
            if path == "/latest/api/token" and headers.get(TTL_HEADER, "").isdigit():
                return 200, TOKEN
            return 400, ""
        if headers.get(TOKEN_HEADER) != TOKEN:
            return 401, ""
        item = self.items.get(path.removeprefix("/latest/"))
        return (404, "") if item is None else (200, item)


@pytest.fixture
def imds_server(serve: Callable[..., FakeServer]) -> FakeServer:
    return serve(Imds().answer)


def test_imds_rejects_requests_without_a_token(imds_server: FakeServer) -> None:
    with requests.get(f"{imds_server.url}/latest/meta-data/ami-id", timeout=5) as reply:
        assert reply.status_code == 401
    with requests.put(f"{imds_server.url}/latest/api/token", timeout=5) as reply:
        assert reply.status_code == 400


def test_ec2_over_http(imds_server: FakeServer) -> None:
    metadata = fetch(Params(execution_method_type="AWS EC2"),
                     {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_server.url}, timeout=TIMEOUT)

    assert metadata.source == "AWS EC2"
    assert metadata.region == "eu-west-1"
    assert metadata.hostname == "ip-172-31-20-57.eu-west-1.compute.internal"
    assert metadata.execution["ip_v4_addresses"] == ["172.31.20.57", "172.31.20.58",
                                                     "34.240.1.2"]
    details = metadata.execution["execution_method_details"]
    assert details["instance_id"] == "i-0f1e2d3c4b5a69788"
    assert details["instance_profile"]["name"] == "report-runner"
    settings = metadata.execution["infrastructure_settings"]
    assert settings["aws_account_id"] == "123456789012"
    assert [n["eni_id"] for n in settings["network"]["networks"]] == [
        "eni-0123456789abcdef0", "eni-0fedcba9876543210"]
    methods = [m for m, _, _ in imds_server.requests]
    assert methods[0] == "PUT"
    assert imds_server.requests[0][2][TTL_HEADER].isdigit()
    assert methods.count("PUT") == 1
    assert 401 not in imds_server.statuses


def test_ec2_is_not_probed_unless_forced(imds_server: FakeServer) -> None:
    metadata = fetch(Params(), {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_server.url},
                     timeout=TIMEOUT)
    assert metadata.source == "Generic"
    assert imds_server.requests == []


def test_ec2_disabled(imds_server: FakeServer) -> None:
    metadata = fetch(Params(execution_method_type="AWS EC2"),
                     {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_server.url,
                      "AWS_EC2_METADATA_DISABLED": "true"}, timeout=TIMEOUT)
    assert metadata.source == "Generic"
    assert imds_server.requests == []


# -- Hung and slow endpoints ---------------------------------------------------------------------

def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_hung_ecs_endpoint_gives_generic_metadata_within_the_timeout(
        hung_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata, elapsed = timed(lambda: fetch(
            Params(), {"ECS_CONTAINER_METADATA_URI_V4": hung_url + ECS_PATH}, timeout=TIMEOUT))
    assert metadata.source == "Generic"
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert "ReadTimeout" in caplog.text


def test_hung_imds_gives_generic_metadata_within_the_timeout(hung_url: str) -> None:
    metadata, elapsed = timed(lambda: fetch(
        Params(execution_method_type="AWS EC2"),
        {"AWS_EC2_METADATA_SERVICE_ENDPOINT": hung_url}, timeout=TIMEOUT))
    assert metadata.source == "Generic"
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK


def test_hung_cache_refresh_is_bounded_too(hung_url: str) -> None:
    cache = MetadataCache(Params(sidecar_container_mode=True),
                          {"ECS_CONTAINER_METADATA_URI_V4": hung_url + ECS_PATH},
                          timeout=TIMEOUT)
    metadata, elapsed = timed(lambda: cache.refresh(force=True))
    assert metadata.source == "Generic"
    assert elapsed < TIMEOUT + SLACK


def test_a_slow_imds_is_cut_off_by_the_fetch_budget(serve: Callable[..., FakeServer]) -> None:
    """Each answer comes within the timeout, but the fifty-odd an EC2 fetch asks for would
    take over 10 s: the fetch stops at its budget, having sent no more than fit in it."""
    delay = 0.2
    slow = serve(Imds().answer, delay=delay)
    metadata, elapsed = timed(lambda: fetch(
        Params(execution_method_type="AWS EC2"),
        {"AWS_EC2_METADATA_SERVICE_ENDPOINT": slow.url}, timeout=TIMEOUT))
    assert metadata.source == "Generic"
    assert len(slow.requests) <= BUDGET / delay + 1, len(slow.requests)
    assert elapsed < BUDGET + SLACK
