"""ECS task metadata → RuntimeMetadata: every mapped field, container roles, sidecar mode."""

from __future__ import annotations

import json
import logging

import pytest
from runtime_fakes import FakeHttp, context, fixture, json_reply

from pwsup.config.params import Params
from pwsup.runtime import RuntimeMetadata, ecs
from pwsup.runtime.ecs_containers import classify
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.http import Reply

URI = "http://169.254.170.2/v4/158d1c80-2394154133"
SINGLE_TASK_ARN = ("arn:aws:ecs:us-west-2:111122223333:task/reporting/"
                   "158d1c8083dd49d6b527399fd6414f5c")


def fetch(task: dict[str, object], *, params: Params | None = None,
          current: dict[str, object] | None = None,
          variable: str = "ECS_CONTAINER_METADATA_URI_V4") -> tuple[RuntimeMetadata, FakeHttp]:
    routes = {("GET", f"{URI}/task"): json_reply(task)}
    if current is not None:
        routes[("GET", URI)] = json_reply(current)
    http = FakeHttp(routes)
    metadata = ecs.fetch(context({variable: URI + "/"}, params=params, http=http))
    return metadata, http


def test_single_container_task_maps_every_field() -> None:
    metadata, http = fetch(fixture("ecs_task_single.json"))

    assert http.urls() == [f"{URI}/task"]
    assert http.requests[0][2] == {"Accept": "application/json"}
    container = {
        "docker_id": "158d1c8083dd49d6b527399fd6414f5c-2394154133",
        "name": "report",
        "docker_name": "report",
        "image_name": "111122223333.dkr.ecr.us-west-2.amazonaws.com/nightly-report:1.4.2",
        "image_id": "sha256:7a1f0a4cf3d5b4a1e4ec3e0cb3e1ad7bd69b8e6e5e1f1e1a9f3c8c2d1e0b9a87",
        "labels": fixture("ecs_task_single.json")["Containers"][0]["Labels"],
        "container_arn": "arn:aws:ecs:us-west-2:111122223333:container/reporting/"
                         "158d1c8083dd49d6b527399fd6414f5c/0206b271-b33f-47ab-86c6-a0ba208a70a9",
        "cpu_units": 2,
        "memory_mb": 0,
    }
    common = {
        "task_definition_arn": "arn:aws:ecs:us-west-2:111122223333:task-definition/"
                               "nightly-report:26",
        "cluster_arn": "arn:aws:ecs:us-west-2:111122223333:cluster/reporting",
        "launch_type": "FARGATE",
        "supported_launch_types": ["FARGATE"],
        "allocated_cpu_units": 256,
        "allocated_memory_mb": 512,
        "monitor_container_name": "report",
        "main_container_name": "report",
        "main_container_cpu_units": 2,
        "main_container_memory_mb": 0,
        "containers": [container],
    }
    network = {
        "network_mode": "awsvpc",
        "ip_v4_subnet_cidr_block": "10.0.2.0/24",
        "dns_servers": ["10.0.0.2"],
        "dns_search_list": ["us-west-2.compute.internal"],
        "private_dns_name": "ip-10-0-2-106.us-west-2.compute.internal",
        "subnet_gateway_ip_v4_address": "10.0.2.1/24",
        "ip_v4_addresses": ["10.0.2.106"],
        "mac_address": "0a:de:f6:10:51:e5",
    }
    assert metadata.execution == {
        "execution_method_type": "AWS ECS",
        "infrastructure_type": "AWS",
        "allocated_cpu_units": 256,
        "allocated_memory_mb": 512,
        "ip_v4_addresses": ["10.0.2.106"],
        "execution_method_details": {"task_arn": SINGLE_TASK_ARN, **common},
        "infrastructure_settings": {
            "network": {"region": "us-west-2", "availability_zone": "us-west-2d",
                        "networks": [network]},
            "logging": {"driver": "awslogs", "options": {
                "create_group": "true", "group": "/ecs/nightly-report", "region": "us-west-2",
                "stream": "ecs/report/158d1c8083dd49d6b527399fd6414f5c"}},
        },
    }
    assert metadata.task == {
        "execution_method_type": "AWS ECS",
        "infrastructure_type": "AWS",
        "allocated_cpu_units": 256,
        "allocated_memory_mb": 512,
        "execution_method_capability_details": common,
        "infrastructure_settings": {
            "network": {"region": "us-west-2", "networks": [{
                "network_mode": "awsvpc", "ip_v4_subnet_cidr_block": "10.0.2.0/24",
                "dns_servers": ["10.0.0.2"], "dns_search_list": ["us-west-2.compute.internal"],
                "subnet_gateway_ip_v4_address": "10.0.2.1/24"}]},
            "logging": {"driver": "awslogs", "options": {
                "create_group": "true", "group": "/ecs/nightly-report", "region": "us-west-2"}},
        },
    }
    assert metadata.hostname == "10.0.2.106"
    assert metadata.region == "us-west-2"
    assert metadata.sidecar is False
    assert metadata.main_container_exit_code is None
    assert metadata.source == "AWS ECS"
    assert metadata.container_env == {
        "PROC_WRAPPER_MONITOR_CONTAINER_NAME": "report",
        "PROC_WRAPPER_MAIN_CONTAINER_NAME": "report",
        "PROC_WRAPPER_SIDECAR_CONTAINER_MODE": "FALSE",
    }
    json.dumps(metadata.execution)
    json.dumps(metadata.task)


def test_sidecar_task_finds_the_other_container_and_its_exit_code() -> None:
    metadata, http = fetch(fixture("ecs_task_sidecar.json"),
                           params=Params(sidecar_container_mode=True),
                           current=fixture("ecs_container_monitor.json"))

    assert http.urls() == [f"{URI}/task", URI]
    assert metadata.sidecar is True
    assert metadata.main_container_exit_code == 3
    details = metadata.execution["execution_method_details"]
    assert details["main_container_name"] == "etl"
    assert details["monitor_container_name"] == "monitor"
    assert details["main_container_cpu_units"] == 768
    assert details["main_container_memory_mb"] == 1536
    assert [c["name"] for c in details["containers"]] == ["etl", "monitor"]
    assert metadata.execution["allocated_cpu_units"] == 1024
    assert metadata.hostname == "192.0.2.3"
    assert metadata.region == "eu-central-1"
    logging_settings = metadata.execution["infrastructure_settings"]["logging"]
    assert logging_settings["options"] == {
        "group": "/ecs/etl-import", "region": "eu-central-1",
        "stream": "ecs/etl/9781c248a0a94b2d9a3e5f1c7e7b8c41", "mode": "non-blocking",
        "max_buffer_size": "4m"}
    assert metadata.container_env == {
        "PROC_WRAPPER_MONITOR_CONTAINER_NAME": "monitor",
        "PROC_WRAPPER_MAIN_CONTAINER_NAME": "etl",
        "PROC_WRAPPER_SIDECAR_CONTAINER_MODE": "TRUE",
    }


def test_sidecar_mode_turns_on_when_both_names_are_given_and_differ() -> None:
    metadata, http = fetch(fixture("ecs_task_sidecar.json"),
                           params=Params(main_container_name="etl",
                                         monitor_container_name="monitor"))

    assert http.urls() == [f"{URI}/task"], "a named monitor needs no container request"
    assert metadata.sidecar is True
    assert metadata.main_container_exit_code == 3


def test_exit_code_is_only_reported_in_sidecar_mode() -> None:
    metadata, _ = fetch(fixture("ecs_task_sidecar.json"),
                        params=Params(main_container_name="etl", monitor_container_name="monitor",
                                      sidecar_container_mode=False))
    assert metadata.sidecar is False
    assert metadata.main_container_exit_code is None


def test_running_main_container_has_no_exit_code_yet() -> None:
    task = fixture("ecs_task_sidecar.json")
    del task["Containers"][0]["ExitCode"]
    metadata, _ = fetch(task, params=Params(sidecar_container_mode=True),
                        current=fixture("ecs_container_monitor.json"))
    assert metadata.sidecar is True
    assert metadata.main_container_exit_code is None


def test_without_names_the_current_container_is_main_and_monitor() -> None:
    metadata, http = fetch(fixture("ecs_task_sidecar.json"),
                           current=fixture("ecs_container_monitor.json"))
    assert http.urls() == [f"{URI}/task", URI]
    details = metadata.execution["execution_method_details"]
    assert details["main_container_name"] == details["monitor_container_name"] == "monitor"
    assert metadata.sidecar is False


def test_pause_containers_do_not_count_and_region_falls_back_to_the_cluster_arn() -> None:
    metadata, http = fetch(fixture("ecs_task_ec2_bridge.json"),
                           variable="ECS_CONTAINER_METADATA_URI")

    assert http.urls() == [f"{URI}/task"], "one application container: it is the current one"
    details = metadata.execution["execution_method_details"]
    assert details["main_container_name"] == "web"
    assert details["launch_type"] == "EC2"
    assert details["task_definition_arn"] == \
        "arn:aws:ecs:ap-southeast-2:777788889999:task-definition/web:112"
    assert "allocated_memory_mb" not in metadata.execution
    assert metadata.execution["allocated_cpu_units"] == 512
    assert metadata.region == "ap-southeast-2"
    settings = metadata.execution["infrastructure_settings"]
    assert settings["network"] == {"region": "ap-southeast-2", "networks": [
        {"network_mode": "awsvpc", "ip_v4_addresses": ["10.9.8.7"],
         "ip_v4_subnet_cidr_block": "10.9.8.0/24"}]}
    assert settings["logging"] == {"driver": "json-file",
                                   "options": {"max_size": "10m", "max_file": "3"}}


def test_region_from_a_local_zone_and_from_the_task_arn() -> None:
    task = fixture("ecs_task_single.json")
    task["AvailabilityZone"] = "us-west-2-lax-1a"
    assert fetch(task)[0].region == "us-west-2"
    task["AvailabilityZone"] = None
    task["Cluster"] = "reporting"
    assert fetch(task)[0].region == "us-west-2"


def test_sidecar_with_several_other_containers_warns_and_has_no_main(
        caplog: pytest.LogCaptureFixture) -> None:
    containers = fixture("ecs_task_sidecar.json")["Containers"]
    third = {**containers[0], "Name": "log-router"}
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        roles = classify([*containers, third], "monitor", main_name=None, monitor_name=None,
                         sidecar=True)
    assert roles.main is None
    assert roles.main_name is None
    assert roles.sidecar is True
    assert "--main-container-name" in caplog.text


def test_unknown_main_container_name_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pwsup.runtime"):
        metadata, _ = fetch(fixture("ecs_task_sidecar.json"),
                            params=Params(main_container_name="nope",
                                          monitor_container_name="monitor"))
    assert "'nope'" in caplog.text
    assert metadata.main_container_exit_code is None
    assert metadata.hostname == "192.0.2.3", "falls back to the monitor container's address"


def test_task_definition_arn_needs_family_and_revision() -> None:
    assert ecs.task_definition_arn({"TaskARN": SINGLE_TASK_ARN, "Family": "f"}) is None
    assert ecs.task_definition_arn({"TaskARN": "nonsense", "Family": "f", "Revision": 1}) is None
    assert ecs.task_definition_arn({"TaskARN": SINGLE_TASK_ARN, "Family": "f", "Revision": 3}) \
        == "arn:aws:ecs:us-west-2:111122223333:task-definition/f:3"


@pytest.mark.parametrize(("cpu", "units"), [(0.25, 256), (0.5, 512), (1, 1024), (4.0, 4096),
                                            (0.1, 102), ("1", None), (True, None)])
def test_task_cpu_is_converted_to_cpu_units(cpu: object, units: int | None) -> None:
    assert ecs.allocated_cpu_units({"Limits": {"CPU": cpu}}) == units


def test_a_task_document_that_is_not_an_object_is_an_error() -> None:
    http = FakeHttp({("GET", f"{URI}/task"): Reply(200, "[]")})
    with pytest.raises(MetadataError, match="not a JSON object"):
        ecs.fetch(context({"ECS_CONTAINER_METADATA_URI_V4": URI}, http=http))


def test_an_http_error_is_an_error() -> None:
    http = FakeHttp({("GET", f"{URI}/task"): Reply(500, "agent busy")})
    with pytest.raises(MetadataError, match="HTTP 500"):
        ecs.fetch(context({"ECS_CONTAINER_METADATA_URI_V4": URI}, http=http))


def test_v4_variable_wins_over_v3() -> None:
    assert ecs.metadata_uri({"ECS_CONTAINER_METADATA_URI": "http://v3/",
                             "ECS_CONTAINER_METADATA_URI_V4": "http://v4/"}) == "http://v4"
    assert ecs.metadata_uri({"ECS_CONTAINER_METADATA_URI": "http://v3"}) == "http://v3"
    assert ecs.metadata_uri({"ECS_CONTAINER_METADATA_URI_V4": " "}) is None
