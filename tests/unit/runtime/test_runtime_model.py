"""RuntimeMetadata, pruning, the Task view, and region helpers."""

from __future__ import annotations

import json

import pytest

from pwsup.runtime import RuntimeMetadata
from pwsup.runtime.model import Scalars, assemble, prune, task_view
from pwsup.runtime.regions import first_region, region_of_arn, region_of_zone
from pwsup.util.record import FrozenError


def test_prune_drops_nulls_and_emptied_dicts_but_keeps_empty_lists() -> None:
    assert prune({"a": None, "b": {"c": None}, "d": [], "e": [{"f": None, "g": 1}], "h": 0,
                  "i": False, "j": ""}) == {"d": [], "e": [{"g": 1}], "h": 0, "i": False,
                                            "j": ""}


def test_task_view_removes_per_run_keys_without_touching_the_input() -> None:
    settings = {"network": {"region": "r", "availability_zone": "rz", "networks": [
        {"network_mode": "awsvpc", "ip_v4_addresses": ["10.0.0.1"], "mac_address": "m"}]},
        "logging": {"driver": "awslogs", "options": {"group": "g", "stream": "s"}},
        "xray": {"trace_id": "t"}}
    original = json.loads(json.dumps(settings))
    assert task_view(settings) == {
        "network": {"region": "r", "networks": [{"network_mode": "awsvpc"}]},
        "logging": {"driver": "awslogs", "options": {"group": "g"}}}
    assert settings == original
    assert task_view(None) is None
    assert task_view({"xray": {"trace_id": "t"}}) is None


def test_assemble_builds_both_views() -> None:
    metadata = assemble(Scalars("AWS ECS", "AWS", 256, None, []), source="AWS ECS",
                        details={"task_arn": "t", "x": None}, capability={},
                        settings={"network": {"region": "r"}}, hostname="h", region="r",
                        container_env={"A": "1"})
    assert metadata.execution == {"execution_method_type": "AWS ECS",
                                  "infrastructure_type": "AWS", "allocated_cpu_units": 256,
                                  "execution_method_details": {"task_arn": "t"},
                                  "infrastructure_settings": {"network": {"region": "r"}}}
    assert metadata.task == {"execution_method_type": "AWS ECS", "infrastructure_type": "AWS",
                             "allocated_cpu_units": 256,
                             "infrastructure_settings": {"network": {"region": "r"}}}
    assert metadata.container_env == {"A": "1"}


def test_runtime_metadata_is_frozen_and_json_able() -> None:
    metadata = RuntimeMetadata()
    with pytest.raises(FrozenError):
        metadata.hostname = "x"  # type: ignore[misc]
    assert json.loads(json.dumps(vars(metadata)))["source"] == "Generic"
    assert metadata.execution_method_type == "Unknown"


@pytest.mark.parametrize(("zone", "region"), [
    ("us-east-1a", "us-east-1"),
    ("eu-central-1b", "eu-central-1"),
    ("us-west-2-lax-1a", "us-west-2"),
    ("us-gov-west-1a", "us-gov-west-1"),
    ("us-iso-east-1a", "us-iso-east-1"),
    ("cn-northwest-1c", "cn-northwest-1"),
    ("use1-az1", None),
    ("", None),
    (None, None),
])
def test_region_of_zone(zone: str | None, region: str | None) -> None:
    assert region_of_zone(zone) == region


@pytest.mark.parametrize(("arn", "region"), [
    ("arn:aws:ecs:eu-west-1:123:cluster/x", "eu-west-1"),
    ("arn:aws:iam::123:role/x", None),
    ("default", None),
    (None, None),
])
def test_region_of_arn(arn: str | None, region: str | None) -> None:
    assert region_of_arn(arn) == region


def test_first_region() -> None:
    assert first_region(None, "", "a", "b") == "a"
    assert first_region() is None
