"""The AWS providers against moto in server mode: real boto3 clients, real HTTP.

A `moto_server` subprocess is started once for this module on a free port of 127.0.0.1,
and every test points boto3 at it through AWS_ENDPOINT_URL (set with monkeypatch, with
dummy credentials, so nothing leaks into other tests and nothing can reach real AWS).
Fixtures are created with ordinary boto3 calls; boto3 itself is never patched. Calls are
counted with botocore event hooks on the clients the resolver creates
(`Resolver(aws_client_hook=...)`).

Module scope, not session scope: tests/conftest.py sweeps away every process a test in
tests/integration leaves behind. This module overrides that sweep (`process_cleanup`
below) with a check that tolerates only its own server, and stops the server when its
last test is done, so no other module ever sees it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

from pwsup.config.params import Params  # noqa: E402
from pwsup.secrets import Resolution, Resolver  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
SUFFIX = "_FOR_PROC_WRAPPER_TO_RESOLVE"
START_DEADLINE = 30.0


# -- the server -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=0.5):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means it is serving
    except OSError:
        return False


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    queue = [pid]
    while queue:
        current = queue.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as stream:
                    children = {int(child) for child in stream.read().split()}
            except OSError:
                continue
            queue.extend(children - found)
            found |= children
    return found


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(endpoint URL, server pid): a moto server for this module, stopped afterwards."""
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log_path, "wb") as log:
        port = _free_port()
        process = subprocess.Popen(_server_command(port), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_DEADLINE
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto_server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def process_cleanup(moto_server: tuple[str, int]) -> Iterator[None]:
    """Replaces the conftest sweep here: a test may leave nothing running but the server."""
    yield
    server_pid = moto_server[1]
    allowed = {server_pid} | _descendants(server_pid)
    leftovers = _descendants(os.getpid()) - allowed
    assert not leftovers, f"processes left running after the test: {sorted(leftovers)}"


@pytest.fixture(autouse=True)
def aws(moto_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> dict[str, str]:
    """A fresh moto state and an environment pointing boto3 at it; returns that env."""
    url = moto_server[0]
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "PROC_WRAPPER_SECRETS_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    settings = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


# -- helpers ------------------------------------------------------------------------------------
class CallCounter:
    """An `aws_client_hook` counting API calls by operation name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.clients: list[tuple[str, str]] = []

    def __call__(self, service: str, client: Any) -> None:
        self.clients.append((service, client.meta.region_name))
        client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1


def run(environ: dict[str, str], *, counter: CallCounter | None = None,
        initial_config: dict[str, Any] | None = None, **options: Any) -> Resolution:
    with Resolver(Params(**options), environ, initial_config=initial_config,
                  aws_client_hook=counter) as resolver:
        return resolver.resolve()


def client(service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region)


# -- Secrets Manager --------------------------------------------------------------------------
def test_secrets_manager_string_binary_arns_and_versions(aws: dict[str, str]) -> None:
    sm = client("secretsmanager")
    created = sm.create_secret(Name="app/db", SecretString=json.dumps(
        {"user": "app", "password": "pw-1"}))
    arn, first_version = created["ARN"], created["VersionId"]
    sm.put_secret_value(SecretId="app/db", SecretString=json.dumps(
        {"user": "app", "password": "pw-2"}))
    sm.create_secret(Name="blob", SecretBinary=b"\x00\x01\xffbinary")
    partial_arn = arn.rsplit("-", 1)[0]
    assert partial_arn != arn

    counter = CallCounter()
    result = run({
        **aws,
        "USER" + SUFFIX: f"{arn}|JP:$.user",
        "PASSWORD" + SUFFIX: f"{partial_arn}!json|JP:$.password",
        "BY_NAME" + SUFFIX: "AWS_SM:app/db|JP:$.password",
        "PREVIOUS" + SUFFIX: "AWS_SM:app/db#AWSPREVIOUS|JP:$.password",
        "FIRST" + SUFFIX: f"AWS_SM:app/db#{first_version}|JP:$.password",
        "BLOB" + SUFFIX: "AWS_SM:blob",
    }, counter=counter)
    assert result.ok, result.failures
    assert result.env["USER"] == "app"
    assert result.env["PASSWORD"] == "pw-2"
    assert result.env["BY_NAME"] == "pw-2"
    assert result.env["PREVIOUS"] == "pw-1"
    assert result.env["FIRST"] == "pw-1"
    assert base64.b64decode(result.env["BLOB"]) == b"\x00\x01\xffbinary"
    assert {"pw-1", "pw-2"} <= result.secret_values
    assert counter.clients == [("secretsmanager", REGION)]  # one client for every call
    assert counter.calls["GetSecretValue"] == 6


def test_secrets_manager_region_comes_from_the_arn(aws: dict[str, str]) -> None:
    arn = client("secretsmanager", "eu-west-1").create_secret(
        Name="far", SecretString="away")["ARN"]
    counter = CallCounter()
    result = run({**aws, "FAR" + SUFFIX: arn}, counter=counter)
    assert result.env["FAR"] == "away"
    assert counter.clients == [("secretsmanager", "eu-west-1")]


def test_secrets_manager_dotenv_env_location(aws: dict[str, str]) -> None:
    client("secretsmanager").create_secret(Name="env-file", SecretString="A=1\nB='two'\n")
    result = run({**aws, "B": "process"}, env_locations=("AWS_SM:env-file",))
    assert (result.env["A"], result.env["B"]) == ("1", "process")


def test_missing_secret_fails_with_the_error_code(aws: dict[str, str]) -> None:
    result = run({**aws, "X" + SUFFIX: "AWS_SM:nope", "Y" + SUFFIX: "PLAIN:y"})
    assert not result.ok
    assert result.env == {}
    (failure,) = result.failures
    assert (failure.name, failure.provider) == ("X", "AWS_SM")
    assert failure.reason == "GetSecretValue failed: ResourceNotFoundException"


def test_hundred_variables_from_one_secret_make_one_call(aws: dict[str, str]) -> None:
    document = {f"key{i}": f"value-{i}" for i in range(100)}
    arn = client("secretsmanager").create_secret(
        Name="many", SecretString=json.dumps(document))["ARN"]
    environ = {**aws, **{f"VAR{i}{SUFFIX}": f"{arn}|JP:$.key{i}" for i in range(100)}}
    counter = CallCounter()
    result = run(environ, counter=counter)
    assert result.ok
    assert all(result.env[f"VAR{i}"] == f"value-{i}" for i in range(100))
    assert counter.calls == Counter({"GetSecretValue": 1})


def test_ttl_refresh_fetches_again(aws: dict[str, str]) -> None:
    sm = client("secretsmanager")
    sm.create_secret(Name="rotating", SecretString="old")
    now = [0.0]
    counter = CallCounter()
    with Resolver(Params(config_ttl=60.0), {**aws, "R" + SUFFIX: "AWS_SM:rotating"},
                  clock=lambda: now[0], aws_client_hook=counter) as resolver:
        assert resolver.resolve().env["R"] == "old"
        sm.put_secret_value(SecretId="rotating", SecretString="new")
        now[0] = 30.0
        assert resolver.resolve().env["R"] == "old"
        now[0] = 61.0
        assert resolver.resolve().env["R"] == "new"
    assert counter.calls["GetSecretValue"] == 2


def test_no_region_anywhere_is_a_failure(aws: dict[str, str]) -> None:
    environ = {k: v for k, v in aws.items() if k != "AWS_DEFAULT_REGION"}
    result = run({**environ, "X" + SUFFIX: "AWS_SM:name"})  # os.environ still has one
    (failure,) = result.failures
    assert failure.reason.startswith("no AWS region")


# -- SSM Parameter Store ----------------------------------------------------------------------
def test_parameter_store(aws: dict[str, str]) -> None:
    ssm = client("ssm")
    ssm.put_parameter(Name="/app/name", Value="first", Type="String")
    ssm.put_parameter(Name="/app/name", Value="second", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/app/secure", Value="s3cure-value", Type="SecureString")
    ssm.put_parameter(Name="/app/list", Value="a,b,c", Type="StringList")
    ssm.put_parameter(Name="/app/json", Value='{"k": "v"}', Type="String")
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/secure"
    result = run({
        **aws,
        "NAME" + SUFFIX: "ssm:/app/name",
        "NAME_V1" + SUFFIX: "AWS_SSM:/app/name:1",
        "SECURE" + SUFFIX: "AWS_SSM:/app/secure",
        "BY_ARN" + SUFFIX: arn,
        "LIST" + SUFFIX: "ssm:/app/list",
        "K" + SUFFIX: "ssm:/app/json|JP:$.k",
    }, initial_config={"list__to_resolve": "ssm:/app/list",
                       "first__to_resolve": "ssm:/app/list|JP:$[0]"})
    assert result.ok, result.failures
    assert result.env["NAME"] == "second"
    assert result.env["NAME_V1"] == "first"
    assert result.env["SECURE"] == "s3cure-value"
    assert result.env["BY_ARN"] == "s3cure-value"
    assert result.env["LIST"] == '["a", "b", "c"]'
    assert result.env["K"] == "v"
    assert result.config["list"] == ["a", "b", "c"]
    assert result.config["first"] == "a"


def test_missing_parameter(aws: dict[str, str]) -> None:
    result = run({**aws, "X" + SUFFIX: "ssm:/nope"}, fail_fast_config_resolution=False)
    assert "X" not in result.env
    assert result.failures[0].reason == "GetParameter failed: ParameterNotFound"


# -- S3 -----------------------------------------------------------------------------------------
def test_s3_formats_from_suffix_mime_type_and_extension(aws: dict[str, str]) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket="cfg")
    yaml_text = "db:\n  host: db.internal\n  port: 5432\n"
    s3.put_object(Bucket="cfg", Key="app/by-extension.yaml", Body=yaml_text.encode())
    s3.put_object(Bucket="cfg", Key="app/by-mime.txt", Body=yaml_text.encode(),
                  ContentType="application/x-yaml; charset=utf-8")
    s3.put_object(Bucket="cfg", Key="app/by-suffix", Body=yaml_text.encode())
    s3.put_object(Bucket="cfg", Key="app/mime-beats-extension.yaml",
                  Body=b'{"from": "json"}', ContentType="application/json")
    s3.put_object(Bucket="cfg", Key="app/base.json", Body=b'{"level": "base", "keep": 1}')
    result = run({
        **aws,
        "HOST" + SUFFIX: "arn:aws:s3:::cfg/app/by-extension.yaml|JP:$.db.host",
        "PORT" + SUFFIX: "AWS_S3:cfg/app/by-mime.txt|JP:$.db.port",
        "DB" + SUFFIX: "AWS_S3:cfg/app/by-suffix!YAML|JP:$.db",
        "FROM" + SUFFIX: "AWS_S3:cfg/app/mime-beats-extension.yaml|JP:$.from",
    }, config_locations=("arn:aws:s3:::cfg/app/base.json", "AWS_S3:cfg/app/by-suffix!yaml"))
    assert result.ok, result.failures
    assert result.env["HOST"] == "db.internal"
    assert result.env["PORT"] == "5432"
    assert json.loads(result.env["DB"]) == {"host": "db.internal", "port": 5432}
    assert result.env["FROM"] == "json"
    assert result.config["level"] == "base"
    assert result.config["db"] == {"host": "db.internal", "port": 5432}


def test_s3_version_id(aws: dict[str, str]) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned",
                             VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="versioned", Key="v.json", Body=b'{"n": 1}')["VersionId"]
    s3.put_object(Bucket="versioned", Key="v.json", Body=b'{"n": 2}')
    result = run({**aws, "OLD" + SUFFIX: f"AWS_S3:versioned/v.json#{first}|JP:$.n",
                  "NEW" + SUFFIX: "AWS_S3:versioned/v.json|JP:$.n"})
    assert (result.env["OLD"], result.env["NEW"]) == ("1", "2")


def test_missing_s3_object(aws: dict[str, str]) -> None:
    client("s3").create_bucket(Bucket="empty")
    result = run({**aws}, config_locations=("AWS_S3:empty/none.json",))
    assert [(f.name, f.provider, f.reason) for f in result.failures] == [
        ("config location 1", "AWS_S3", "GetObject failed: NoSuchKey")]


# -- AppConfig ----------------------------------------------------------------------------------
def test_appconfig(aws: dict[str, str]) -> None:
    import importlib.util

    if importlib.util.find_spec("moto.appconfigdata") is None:
        pytest.skip("moto does not serve AppConfig Data (StartConfigurationSession); "
                    "the provider is covered with a fake client in the unit tests")
    appconfig = client("appconfig")  # pragma: no cover - for a moto that serves it
    app = appconfig.create_application(Name="app")["Id"]
    profile = appconfig.create_configuration_profile(
        ApplicationId=app, Name="profile", LocationUri="hosted")["Id"]
    appconfig.create_hosted_configuration_version(
        ApplicationId=app, ConfigurationProfileId=profile, Content=b"a: 1\n",
        ContentType="application/x-yaml")
    try:
        client("appconfigdata").start_configuration_session(
            ApplicationIdentifier=app, EnvironmentIdentifier="prod",
            ConfigurationProfileIdentifier=profile)
    except Exception as error:  # moto without environments or deployments
        pytest.skip(f"moto's AppConfig Data cannot serve a profile: {type(error).__name__}")
    result = run({**aws, "A" + SUFFIX: f"aws:appconfig:{app}/prod/{profile}|JP:$.a"})
    assert result.env["A"] == "1"


# -- everything at once ---------------------------------------------------------------------
def test_file_env_config_plain_and_aws_together(aws: dict[str, str], tmp_path: Path) -> None:
    client("secretsmanager").create_secret(Name="db", SecretString=json.dumps(
        {"username": "app", "password": "pw"}))
    env_file = tmp_path / "common.env"
    env_file.write_text("SHARED=from-file\nDB_CONFIG={\"user\": \"u\"}\n")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"db": {"password__to_resolve": "AWS_SM:db|JP:$.password"},
                                       "region": "r"}))
    result = run({
        **aws,
        "FROM_ENV" + SUFFIX: "ENV:DB_CONFIG|JP:$.user",
        "FROM_CONFIG" + SUFFIX: "CONFIG:$.region",
        "FROM_PLAIN" + SUFFIX: "PLAIN:literal",
        "FROM_FILE" + SUFFIX: f"FILE:{env_file}!dotenv|JP:$.SHARED",
    }, env_locations=(str(env_file),), config_locations=(f"file://{config_file}",))
    assert result.ok, result.failures
    assert result.env["SHARED"] == "from-file"
    assert result.env["FROM_ENV"] == "u"
    assert result.env["FROM_CONFIG"] == "r"
    assert result.env["FROM_PLAIN"] == "literal"
    assert result.env["FROM_FILE"] == "from-file"
    assert result.config["db"] == {"password": "pw"}
    assert json.loads(result.env["TASK_CONFIG"]) == {"db": {"password": "pw"}, "region": "r"}


# -- end to end through the CLI: the canary ---------------------------------------------------
def _titles_of_tree(root: int) -> list[str]:
    titles = []
    for pid in {root} | _descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                titles.append(stream.read().decode("utf-8", "replace"))
        except OSError:
            continue
    return titles


def test_no_canary_secret_reaches_logs_titles_or_output_files(
    aws: dict[str, str], tmp_path: Path
) -> None:
    """Secrets from every provider reach the command, and nothing else: not stderr or stdout
    at DEBUG, not a process title during the run; output files are mode 0600 and removed."""
    canaries = {name: f"canary-{name.lower()}-7f3a9c" for name in
                ("SM", "SSM", "S3", "FILE", "PLAIN", "ENVSRC")}
    client("secretsmanager").create_secret(Name="app", SecretString=json.dumps(
        {"token": canaries["SM"]}))
    client("ssm").put_parameter(Name="/app/pw", Value=canaries["SSM"], Type="SecureString")
    s3 = client("s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="app.env", Body=f"S3_SECRET={canaries['S3']}\n".encode())
    env_file = tmp_path / "app.env"
    env_file.write_text(f"FILE_SECRET={canaries['FILE']}\n")
    marker = tmp_path / "child-saw"
    env_out, config_out = tmp_path / "out.env", tmp_path / "out.json"
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("PROC_WRAPPER_", "PWSUP_"))}
    environ.update(aws)
    environ.update({
        "PROC_WRAPPER_LOG_LEVEL": "DEBUG",
        "SM_SECRET" + SUFFIX:
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app|JP:$.token",
        "SSM_SECRET" + SUFFIX: "AWS_SSM:/app/pw",
        "PLAIN_SECRET" + SUFFIX: f"PLAIN:{canaries['PLAIN']}",
        "SOURCE_VAR": canaries["ENVSRC"],
        "ENV_SECRET" + SUFFIX: "ENV:SOURCE_VAR",
    })
    script = ("import os, pathlib, time, sys\n"
              "names = ['SM_SECRET', 'SSM_SECRET', 'S3_SECRET', 'FILE_SECRET', 'PLAIN_SECRET',"
              " 'ENV_SECRET']\n"
              f"out, cfg = pathlib.Path({str(env_out)!r}), pathlib.Path({str(config_out)!r})\n"
              "modes = [oct(p.stat().st_mode & 0o777) for p in (out, cfg)]\n"
              f"pathlib.Path({str(marker)!r}).write_text(\n"
              "    '\\n'.join(os.environ.get(n, 'MISSING') for n in names)\n"
              "    + '\\n' + ' '.join(modes))\n"
              "print('ready', flush=True)\n"
              "sys.stdin.readline()\n")
    pwsup = str(Path(sys.executable).parent / "pwsup")
    process = subprocess.Popen(
        [pwsup, "-e", "arn:aws:s3:::cfg/app.env", "-e", f"FILE:{env_file}",
         "--env-output-filename", str(env_out), "--config-output-filename", str(config_out),
         "--", sys.executable, "-c", script],
        env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        ready = process.stdout.readline()
        assert ready == b"ready\n", process.stderr.read() if process.stderr else b""
        titles = _titles_of_tree(process.pid)
        stdout, stderr = process.communicate(input=b"\n", timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr.decode()
    seen, modes = marker.read_text().rsplit("\n", 1)
    assert seen.split("\n") == [canaries[n] for n in ("SM", "SSM", "S3", "FILE", "PLAIN",
                                                      "ENVSRC")]
    assert modes == "0o600 0o600"
    assert not env_out.exists()
    assert not config_out.exists()
    assert b"DEBUG" in stderr  # the run really logged at DEBUG
    for canary in canaries.values():
        assert canary.encode() not in stdout + stderr, canary
        assert all(canary not in title for title in titles), canary
