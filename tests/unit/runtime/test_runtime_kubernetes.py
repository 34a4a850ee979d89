"""Kubernetes downward-API variables → RuntimeMetadata (types stay "Unknown")."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_fakes import context

from pwsup.config.params import Params
from pwsup.runtime import fetch, kubernetes
from pwsup.runtime.detect import AUTO_ORDER, choose

POD = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "POD_NAME": "nightly-report-28875360-x7kq2",
    "POD_NAMESPACE": "batch",
    "NODE_NAME": "ip-10-1-4-17.eu-west-1.compute.internal",
    "CONTAINER_NAME": "report",
    "POD_IP": "10.1.4.230",
    "POD_UID": "6f1a7c52-2b5e-4d0f-9a3c-8e7b6d5c4a31",
    "POD_SERVICE_ACCOUNT": "reporter",
}


@pytest.fixture(autouse=True)
def no_namespace_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "namespace"
    monkeypatch.setattr(kubernetes, "NAMESPACE_FILE", path)
    return path


def test_pod_variables_are_mapped() -> None:
    metadata = kubernetes.fetch(context(POD))
    assert metadata.execution == {
        "execution_method_type": "Unknown",
        "infrastructure_type": "Unknown",
        "ip_v4_addresses": ["10.1.4.230"],
        "execution_method_details": {"kubernetes": {
            "pod_name": "nightly-report-28875360-x7kq2",
            "namespace": "batch",
            "node_name": "ip-10-1-4-17.eu-west-1.compute.internal",
            "container_name": "report",
            "pod_ip": "10.1.4.230",
            "pod_uid": "6f1a7c52-2b5e-4d0f-9a3c-8e7b6d5c4a31",
            "service_account": "reporter",
        }},
    }
    assert metadata.task == {
        "execution_method_type": "Unknown",
        "infrastructure_type": "Unknown",
        "execution_method_capability_details": {"kubernetes": {
            "namespace": "batch", "container_name": "report", "service_account": "reporter"}},
    }
    assert metadata.source == "Kubernetes"
    assert metadata.region is None
    assert metadata.hostname


@pytest.mark.parametrize("prefix", ["KUBERNETES_", "MY_"])
def test_alternative_variable_names(prefix: str) -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", f"{prefix}POD_NAME": "p",
               f"{prefix}NODE_NAME": "n", f"{prefix}CONTAINER_NAME": "c",
               f"{prefix}POD_NAMESPACE": "ns"}
    pod = kubernetes.fetch(context(environ)).execution["execution_method_details"]["kubernetes"]
    assert pod == {"pod_name": "p", "namespace": "ns", "node_name": "n", "container_name": "c"}


def test_namespace_falls_back_to_the_service_account_file(no_namespace_file: Path) -> None:
    no_namespace_file.write_text("payments\n")
    metadata = kubernetes.fetch(context({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}))
    assert metadata.execution["execution_method_details"] == {
        "kubernetes": {"namespace": "payments"}}


def test_no_variables_gives_no_details() -> None:
    metadata = kubernetes.fetch(context({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}))
    assert metadata.execution == {"execution_method_type": "Unknown",
                                  "infrastructure_type": "Unknown"}
    assert metadata.source == "Kubernetes"


def test_an_ipv6_pod_ip_is_not_an_ipv4_address() -> None:
    metadata = kubernetes.fetch(context({**POD, "POD_IP": "fd00:10:244::17"}))
    assert "ip_v4_addresses" not in metadata.execution
    assert metadata.execution["execution_method_details"]["kubernetes"]["pod_ip"] == \
        "fd00:10:244::17"


def test_detected_after_the_aws_methods() -> None:
    assert fetch(Params(), POD).source == "Kubernetes"
    assert fetch(Params(execution_method_type="Unknown"), POD).source == "Kubernetes"
    chosen = choose(context({**POD, "ECS_CONTAINER_METADATA_URI_V4": "http://x"}), AUTO_ORDER)
    assert chosen is not None
    assert chosen.name == "AWS ECS"
