"""AWS AppConfig through a fake AppConfig Data service over real HTTP on 127.0.0.1.

moto does not serve AppConfig Data (StartConfigurationSession / GetLatestConfiguration),
so this module plays it: the two REST calls, reached by real boto3 clients through
AWS_ENDPOINT_URL_APPCONFIGDATA — boto3 itself is never patched.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

pytest.importorskip("boto3")

from pwsup.config.params import Params
from pwsup.secrets import Resolver

SUFFIX = "_FOR_PROC_WRAPPER_TO_RESOLVE"


class FakeAppConfigData:
    """Profiles keyed by (application, environment, profile) → (content type, bytes)."""

    def __init__(self) -> None:
        self.profiles: dict[tuple[str, str, str], tuple[str, bytes]] = {}
        self.sessions: dict[str, tuple[str, str, str]] = {}
        self.calls: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # StartConfigurationSession
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = (body.get("ApplicationIdentifier"), body.get("EnvironmentIdentifier"),
                       body.get("ConfigurationProfileIdentifier"))
                fake.calls.append("StartConfigurationSession")
                if self.path != "/configurationsessions" or key not in fake.profiles:
                    self._json(404, {"Message": "not found"},
                               {"x-amzn-ErrorType": "ResourceNotFoundException"})
                    return
                token = uuid.uuid4().hex
                fake.sessions[token] = key
                self._json(201, {"InitialConfigurationToken": token})

            def do_GET(self) -> None:  # GetLatestConfiguration
                url = urlparse(self.path)
                token = parse_qs(url.query).get("configuration_token", [""])[0]
                fake.calls.append("GetLatestConfiguration")
                if url.path != "/configuration" or token not in fake.sessions:
                    self._json(400, {"Message": "bad token"},
                               {"x-amzn-ErrorType": "BadRequestException"})
                    return
                content_type, content = fake.profiles[fake.sessions[token]]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Next-Poll-Configuration-Token", uuid.uuid4().hex)
                self.send_header("Next-Poll-Interval-In-Seconds", "60")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def appconfig(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAppConfigData]:
    fake = FakeAppConfigData()
    for name, value in {"AWS_ENDPOINT_URL_APPCONFIGDATA": fake.url,
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield fake
    finally:
        fake.close()


def resolve(environ: dict[str, str], **settings: Any) -> Any:
    with Resolver(Params(**settings), {"AWS_DEFAULT_REGION": "us-east-1", **environ}) as r:
        return r.resolve()


def test_appconfig_yaml_profile_by_content_type(appconfig: FakeAppConfigData) -> None:
    """The profile's Content-Type picks the format; JSONPath then picks the value."""
    appconfig.profiles["app", "prod", "flags"] = ("application/x-yaml", b"db:\n  host: h1\n")
    result = resolve({"DB_HOST" + SUFFIX: "aws:appconfig:app/prod/flags|JP:$.db.host"})
    assert result.ok, result.failures
    assert result.env["DB_HOST"] == "h1"
    assert appconfig.calls == ["StartConfigurationSession", "GetLatestConfiguration"]


def test_appconfig_json_as_a_config_location(appconfig: FakeAppConfigData) -> None:
    """A JSON profile merges into the configuration as a top-level location."""
    appconfig.profiles["app", "prod", "cfg"] = ("application/json", b'{"limit": 5}')
    result = resolve({}, config_locations=("AWS_APP_CONFIG:app/prod/cfg",))
    assert result.ok, result.failures
    assert result.config["limit"] == 5


def test_missing_appconfig_profile_is_a_failure(appconfig: FakeAppConfigData) -> None:
    """An unknown profile fails resolution, naming the variable and the provider only."""
    result = resolve({"X" + SUFFIX: "aws:appconfig:app/prod/nope"})
    assert not result.ok
    assert "AWS_APP_CONFIG" in str(result.failures[0])
