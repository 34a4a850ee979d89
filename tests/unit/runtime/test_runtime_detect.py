"""Detection order, forced execution methods, and falling back without ever raising."""

from __future__ import annotations

import logging
import socket

import pytest
from runtime_fakes import context

from pwsup.config.params import Params
from pwsup.runtime import detect, fetch
from pwsup.runtime.context import Fetcher
from pwsup.runtime.detect import AUTO_ORDER, candidates, choose

ECS = {"ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:9/v4/x"}
CODEBUILD = {"CODEBUILD_BUILD_ARN": "arn:aws:codebuild:eu-west-1:1:build/p:b"}
LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task"}
K8S = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}


@pytest.mark.parametrize(("environ", "lambda_context", "expected"), [
    ({**CODEBUILD, **ECS, **LAMBDA, **K8S}, object(), "AWS CodeBuild"),
    ({**ECS, **LAMBDA, **K8S}, object(), "AWS ECS"),
    ({**LAMBDA, **K8S}, object(), "AWS Lambda"),
    ({**K8S}, object(), "Kubernetes"),
    ({}, None, "Generic"),
])
def test_auto_detection_order(environ: dict[str, str], lambda_context: object,
                              expected: str) -> None:
    ctx = context(environ, lambda_context=lambda_context)
    chosen = choose(ctx, AUTO_ORDER)
    assert chosen is not None
    assert chosen.name == expected


def test_ec2_is_never_auto_detected() -> None:
    assert "AWS EC2" not in AUTO_ORDER
    assert candidates(Params(execution_method_type="AWS EC2")) == ("AWS EC2",)


@pytest.mark.parametrize(("forced", "expected"), [
    (None, AUTO_ORDER),
    ("AWS ECS", ("AWS ECS",)),
    ("AWS Lambda", ("AWS Lambda",)),
    ("AWS CodeBuild", ("AWS CodeBuild",)),
    ("Unknown", ("Kubernetes", "Generic")),
])
def test_candidates(forced: str | None, expected: tuple[str, ...]) -> None:
    assert candidates(Params(execution_method_type=forced)) == expected


def test_ec2_is_off_when_imds_is_disabled() -> None:
    ec2 = detect.FETCHERS["AWS EC2"]
    assert ec2.applies(context({}))
    assert not ec2.applies(context({"AWS_EC2_METADATA_DISABLED": "true"}))
    assert not ec2.applies(context({"AWS_EC2_METADATA_DISABLED": "TRUE"}))
    assert ec2.applies(context({"AWS_EC2_METADATA_DISABLED": "false"}))


def test_generic_metadata() -> None:
    metadata = fetch(Params(), {})
    assert metadata.execution == {"execution_method_type": "Unknown",
                                  "infrastructure_type": "Unknown"}
    assert metadata.task == metadata.execution
    assert metadata.hostname == socket.gethostname()
    assert metadata.region is None
    assert metadata.source == "Generic"
    assert metadata.execution_method_type == "Unknown"


def test_forced_method_that_is_not_found_warns_and_falls_back(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = fetch(Params(execution_method_type="AWS ECS"), {**K8S})
    assert metadata.source == "Generic"
    assert "AWS ECS" in caplog.text
    assert "ECS_CONTAINER_METADATA_URI_V4" in caplog.text


def test_forced_ec2_with_imds_disabled_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = fetch(Params(execution_method_type="AWS EC2"),
                         {"AWS_EC2_METADATA_DISABLED": "true"})
    assert metadata.source == "Generic"
    assert "AWS_EC2_METADATA_DISABLED" in caplog.text


def test_a_crashing_fetcher_is_logged_and_replaced(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken(ctx: object) -> object:
        raise KeyError("secret-looking detail")

    fetchers = dict(detect.FETCHERS)
    fetchers["Kubernetes"] = Fetcher("Kubernetes", lambda ctx: True, broken,  # type: ignore[arg-type]
                                     "KUBERNETES_SERVICE_HOST")
    monkeypatch.setattr(detect, "FETCHERS", fetchers)
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = fetch(Params(), K8S)
    assert metadata.source == "Generic"
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "Kubernetes runtime metadata unavailable (KeyError)" in caplog.text
    assert "secret-looking" not in caplog.text


def test_fetch_never_raises_even_if_detection_itself_breaks(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def explode(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(detect, "run", explode)
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = fetch(Params(), {})
    assert metadata.source == "Generic"
    assert "RuntimeError" in caplog.text


def test_unreachable_ecs_endpoint_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata = fetch(Params(), ECS, timeout=0.5)
    assert metadata.source == "Generic"
    assert "AWS ECS runtime metadata unavailable" in caplog.text
    assert "ConnectionError" in caplog.text
