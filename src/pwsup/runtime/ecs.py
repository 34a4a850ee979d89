"""AWS ECS: task metadata endpoint v4 (or v3), mapped to the CloudReactor fields.

Requests: `GET <uri>/task`, plus `GET <uri>` (the current container) only when the task has
several application containers and no monitor container name was given; both with
`Accept: application/json` and the fetch's short timeout.

Mapping (Task Execution view; the Task view is the same without `task_arn` and without the
per-run keys of `model.EXECUTION_ONLY_KEYS`):

- top level: `execution_method_type` "AWS ECS", `infrastructure_type` "AWS",
  `allocated_cpu_units` = task `Limits.CPU` (vCPUs) * 1024, `allocated_memory_mb` = task
  `Limits.Memory`, `ip_v4_addresses` = the main container's IPv4 addresses;
- `execution_method_details`: `task_arn`, `task_definition_arn` (the task ARN's prefix up to
  `:task/`, then `:task-definition/<Family>:<Revision>`), `cluster_arn` (`Cluster`),
  `launch_type` and `supported_launch_types` (`[LaunchType]`), the allocations again,
  `monitor_container_name`, `main_container_name`, `main_container_cpu_units`,
  `main_container_memory_mb`, and `containers[]` (`docker_id, name, docker_name,
  image_name, image_id, labels, container_arn, cpu_units, memory_mb`);
- `infrastructure_settings`: `network {region, availability_zone, networks[]}` with each
  network as `network_mode, ip_v4_subnet_cidr_block, dns_servers, dns_search_list,
  private_dns_name, subnet_gateway_ip_v4_address, ip_v4_addresses, mac_address`, and
  `logging {driver, options}` with the driver's `<driver>-` prefix removed from option
  names and `-` turned into `_` (`awslogs-group` → `group`).

Networks, logging and the host name come from the main container (else the monitor).
The region comes from the availability zone, else the cluster ARN, else the task ARN.
In sidecar mode the main container's `ExitCode` is reported once the agent lists one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pwsup.runtime.context import FetchContext, Fetcher, env_text, host_name
from pwsup.runtime.ecs_containers import (
    ContainerRoles,
    application_containers,
    by_name,
    classify,
)
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.model import AWS, JsonDict, RuntimeMetadata, Scalars, assemble
from pwsup.runtime.regions import first_region, region_of_arn, region_of_zone

NAME = "AWS ECS"
URI_VARIABLES = ("ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI")
HEADERS = {"Accept": "application/json"}
VCPU_UNITS = 1024


def metadata_uri(environ: Mapping[str, str]) -> str | None:
    """The metadata endpoint of this container, without a trailing slash."""
    uri = env_text(environ, *URI_VARIABLES)
    return uri.rstrip("/") if uri else None


def applies(ctx: FetchContext) -> bool:
    return metadata_uri(ctx.environ) is not None


def fetch(ctx: FetchContext) -> RuntimeMetadata:
    uri = metadata_uri(ctx.environ)
    if uri is None:
        raise MetadataError("no ECS metadata endpoint variable is set")
    task = _object(ctx.http.get_json(f"{uri}/task", HEADERS), "the ECS task metadata")
    params = ctx.params
    roles = classify(
        containers_of(task), _current_container_name(ctx, uri, task),
        main_name=params.main_container_name, monitor_name=params.monitor_container_name,
        sidecar=params.sidecar_container_mode)
    return to_metadata(task, roles)


def _current_container_name(ctx: FetchContext, uri: str, task: JsonDict) -> str | None:
    """pwsup's own container: named, the only one, or asked from the container endpoint."""
    if ctx.params.monitor_container_name:
        return str(ctx.params.monitor_container_name)
    applications = application_containers(containers_of(task))
    if len(applications) == 1:
        return _text(applications[0].get("Name"))
    current = _object(ctx.http.get_json(uri, HEADERS), "the ECS container metadata")
    return _text(current.get("Name"))


def containers_of(task: JsonDict) -> list[JsonDict]:
    """The task's container entries (malformed entries are skipped)."""
    containers = task.get("Containers")
    if not isinstance(containers, list):
        return []
    return [c for c in containers if isinstance(c, dict)]


def to_metadata(task: JsonDict, roles: ContainerRoles) -> RuntimeMetadata:
    """Map a task metadata document and the container roles to `RuntimeMetadata`."""
    containers = containers_of(task)
    source = roles.main or by_name(containers, roles.monitor_name)
    addresses = ip_v4_addresses(source)
    cpu, memory = allocated_cpu_units(task), _integer(_limits(task).get("Memory"))
    common = _common_details(task, roles, containers, cpu, memory)
    region = first_region(region_of_zone(_text(task.get("AvailabilityZone"))),
                          region_of_arn(_text(task.get("Cluster"))),
                          region_of_arn(_text(task.get("TaskARN"))))
    return assemble(
        Scalars(NAME, AWS, cpu, memory, addresses or None), source=NAME,
        details={"task_arn": task.get("TaskARN"), **common}, capability=common,
        settings=_settings(task, source, region),
        hostname=addresses[0] if addresses else host_name(), region=region,
        main_container_exit_code=exit_code(roles), sidecar=roles.sidecar,
        container_env=container_env(roles))


def _common_details(task: JsonDict, roles: ContainerRoles, containers: list[JsonDict],
                    cpu: int | None, memory: int | None) -> JsonDict:
    launch_type = _text(task.get("LaunchType"))
    main_limits = _limits(roles.main)
    return {
        "task_definition_arn": task_definition_arn(task),
        "cluster_arn": _text(task.get("Cluster")),
        "launch_type": launch_type,
        "supported_launch_types": [launch_type] if launch_type else None,
        "allocated_cpu_units": cpu,
        "allocated_memory_mb": memory,
        "monitor_container_name": roles.monitor_name,
        "main_container_name": roles.main_name,
        "main_container_cpu_units": _integer(main_limits.get("CPU")),
        "main_container_memory_mb": _integer(main_limits.get("Memory")),
        "containers": [container_summary(c) for c in containers],
    }


def task_definition_arn(task: JsonDict) -> str | None:
    """`arn:...:task/...` + Family + Revision → `arn:...:task-definition/<Family>:<Revision>`."""
    task_arn, family = _text(task.get("TaskARN")), _text(task.get("Family"))
    revision = task.get("Revision")
    if not task_arn or ":task/" not in task_arn or not family or revision in (None, ""):
        return None
    prefix = task_arn.split(":task/", 1)[0]
    return f"{prefix}:task-definition/{family}:{revision}"


def allocated_cpu_units(task: JsonDict) -> int | None:
    """Task CPU in CPU units: `Limits.CPU` is in vCPUs (0.25 → 256)."""
    vcpus = _limits(task).get("CPU")
    if isinstance(vcpus, bool) or not isinstance(vcpus, int | float):
        return None
    return round(vcpus * VCPU_UNITS)


def container_summary(container: JsonDict) -> JsonDict:
    limits = _limits(container)
    return {
        "docker_id": container.get("DockerId"),
        "name": container.get("Name"),
        "docker_name": container.get("DockerName"),
        "image_name": container.get("Image"),
        "image_id": container.get("ImageID"),
        "labels": container.get("Labels"),
        "container_arn": container.get("ContainerARN"),
        "cpu_units": _integer(limits.get("CPU")),
        "memory_mb": _integer(limits.get("Memory")),
    }


def _settings(task: JsonDict, container: JsonDict | None, region: str | None) -> JsonDict:
    return {
        "network": {
            "region": region,
            "availability_zone": _text(task.get("AvailabilityZone")),
            "networks": [network(n) for n in _networks(container)] or None,
        },
        "logging": logging_settings(container),
    }


def network(entry: JsonDict) -> JsonDict:
    return {
        "network_mode": entry.get("NetworkMode"),
        "ip_v4_subnet_cidr_block": entry.get("IPv4SubnetCIDRBlock"),
        "dns_servers": entry.get("DomainNameServers"),
        "dns_search_list": entry.get("DomainNameSearchList"),
        "private_dns_name": entry.get("PrivateDNSName"),
        "subnet_gateway_ip_v4_address": entry.get("SubnetGatewayIpv4Address"),
        "ip_v4_addresses": entry.get("IPv4Addresses"),
        "mac_address": entry.get("MACAddress"),
    }


def logging_settings(container: JsonDict | None) -> JsonDict | None:
    """`{driver, options}` with option names stripped of the `<driver>-` prefix."""
    driver = _text((container or {}).get("LogDriver"))
    if not driver:
        return None
    raw = (container or {}).get("LogOptions")
    options = raw if isinstance(raw, dict) else {}
    prefix = f"{driver}-"
    return {"driver": driver, "options": {
        key.removeprefix(prefix).replace("-", "_"): value for key, value in options.items()}}


def ip_v4_addresses(container: JsonDict | None) -> list[str]:
    """The container's IPv4 addresses over all its networks, in order."""
    return [address for n in _networks(container) for address in n.get("IPv4Addresses") or []
            if isinstance(address, str)]


def exit_code(roles: ContainerRoles) -> int | None:
    """The main container's exit code, in sidecar mode, once it has one."""
    code = (roles.main or {}).get("ExitCode")
    return code if roles.sidecar and isinstance(code, int) and not isinstance(code, bool) \
        else None


def container_env(roles: ContainerRoles) -> dict[str, str]:
    """The PROC_WRAPPER_* container variables the command receives (the names proc_wrapper
    exports, so commands written for it find them)."""
    env = {"PROC_WRAPPER_SIDECAR_CONTAINER_MODE": "TRUE" if roles.sidecar else "FALSE"}
    if roles.monitor_name:
        env["PROC_WRAPPER_MONITOR_CONTAINER_NAME"] = roles.monitor_name
    if roles.main_name:
        env["PROC_WRAPPER_MAIN_CONTAINER_NAME"] = roles.main_name
    return env


def _networks(container: JsonDict | None) -> list[JsonDict]:
    networks = (container or {}).get("Networks")
    return [n for n in networks if isinstance(n, dict)] if isinstance(networks, list) else []


def _limits(entry: JsonDict | None) -> JsonDict:
    limits = (entry or {}).get("Limits")
    return limits if isinstance(limits, dict) else {}


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(value: Any, what: str) -> JsonDict:
    if not isinstance(value, dict):
        raise MetadataError(f"{what} is not a JSON object")
    return value


FETCHER = Fetcher(NAME, applies=applies, fetch=fetch, requirement=" or ".join(URI_VARIABLES))
