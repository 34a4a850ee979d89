"""`RuntimeMetadata`, the one result every fetcher produces, and the helpers that shape it.

The CloudReactor server receives runtime metadata in two views (the execution's fields in
the start request and the updates, and the `task` object of the start request):

- the Task Execution view (`execution`): what this particular run ran on, including
  identifiers of the run (task ARN, request id, IP addresses...);
- the Task view (`task`): what every run of the Task runs on, used when the server
  auto-creates the Task and may later launch it; identifiers of a single run do not belong
  there.

Both are plain JSON-able dicts holding exactly the keys the API body takes, with null
values left out, so a caller merges them into its request without translating anything.
The record is frozen so a value can be shared between threads; the dicts inside are not
copied on access, and callers must treat them as read-only.
"""

from __future__ import annotations

from typing import Any

from pwsup.util.record import Record, field

JsonDict = dict[str, Any]

UNKNOWN = "Unknown"
AWS = "AWS"

EXECUTION_ONLY_KEYS = frozenset({
    "availability_zone", "mac_address", "private_dns_name", "public_dns_name",
    "ip_v4_addresses", "private_ip_v4_addresses", "public_ip_v4_addresses", "ip_v6_addresses",
    "device_number", "eni_id", "stream", "trace_id",
})
"""Keys of `infrastructure_settings` that describe one run, not the Task: they are removed
from the Task view (`task_view`). proc_wrapper shared nested dicts between the views, so
such values sometimes leaked into the Task; building the Task view as a pruned deep copy
avoids that."""


class RuntimeMetadata(Record):
    """What pwsup found out about where it runs.

    - `execution`: Task Execution fields (`execution_method_type`, `infrastructure_type`,
      `allocated_cpu_units`, `allocated_memory_mb`, `ip_v4_addresses`,
      `execution_method_details`, `infrastructure_settings`), non-null ones only.
    - `task`: Task fields (`execution_method_type`, `infrastructure_type`,
      `allocated_cpu_units`, `allocated_memory_mb`, `execution_method_capability_details`,
      `infrastructure_settings`), non-null ones only.
    - `hostname`: the main container's first IP address on ECS, else a host name.
    - `region`: the AWS region the run is in, when it runs on AWS (for secrets lookups).
    - `main_container_exit_code`: ECS sidecar mode only, once the main container exited.
    - `sidecar`: whether pwsup monitors another ECS container instead of running a command.
    - `container_env`: variables to add to the command's environment (ECS container names).
    - `source`: the fetcher that produced this ("AWS ECS", "Kubernetes", "Generic"...);
      "Generic" also after a failed fetch.
    """

    execution: JsonDict = field(default_factory=dict)
    task: JsonDict = field(default_factory=dict)
    hostname: str | None = None
    region: str | None = None
    main_container_exit_code: int | None = None
    sidecar: bool = False
    container_env: dict[str, str] = field(default_factory=dict)
    source: str = "Generic"

    @property
    def execution_method_type(self) -> str:
        """The detected execution method ("Unknown" when none was detected)."""
        return str(self.execution.get("execution_method_type", UNKNOWN))


def prune(value: Any) -> Any:
    """A copy of a JSON-like value without null entries or dicts left empty by that.

    The server treats a missing key and null alike, and leaving nulls out keeps request
    bodies and logs short. Empty lists are kept: "no DNS search domains" is information.
    """
    if isinstance(value, dict):
        pruned = {key: prune(item) for key, item in value.items() if item is not None}
        return {key: item for key, item in pruned.items() if item != {}}
    if isinstance(value, list):
        return [prune(item) for item in value]
    return value


def task_view(settings: JsonDict | None) -> JsonDict | None:
    """`infrastructure_settings` for the Task view: a deep copy without per-run keys."""
    if settings is None:
        return None
    stripped = _without_keys(settings, EXECUTION_ONLY_KEYS)
    return stripped if isinstance(stripped, dict) and stripped else None


def _without_keys(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return prune({k: _without_keys(v, keys) for k, v in value.items() if k not in keys})
    if isinstance(value, list):
        return [_without_keys(item, keys) for item in value]
    return value


class Scalars(Record):
    """The top-level fields both views share (only `ip_v4_addresses` is execution-only)."""

    execution_method_type: str = UNKNOWN
    infrastructure_type: str = UNKNOWN
    allocated_cpu_units: int | None = None
    allocated_memory_mb: int | None = None
    ip_v4_addresses: list[str] | None = None


def assemble(
    scalars: Scalars,
    *,
    source: str,
    details: JsonDict | None = None,
    capability: JsonDict | None = None,
    settings: JsonDict | None = None,
    hostname: str | None = None,
    region: str | None = None,
    main_container_exit_code: int | None = None,
    sidecar: bool = False,
    container_env: dict[str, str] | None = None,
) -> RuntimeMetadata:
    """Build both views from the pieces a fetcher found, dropping nulls everywhere."""
    common = {
        "execution_method_type": scalars.execution_method_type,
        "infrastructure_type": scalars.infrastructure_type,
        "allocated_cpu_units": scalars.allocated_cpu_units,
        "allocated_memory_mb": scalars.allocated_memory_mb,
    }
    execution = {
        **common,
        "ip_v4_addresses": scalars.ip_v4_addresses or None,
        "execution_method_details": prune(details) if details else None,
        "infrastructure_settings": prune(settings) if settings else None,
    }
    task = {
        **common,
        "execution_method_capability_details": prune(capability) if capability else None,
        "infrastructure_settings": task_view(settings),
    }
    return RuntimeMetadata(
        execution=prune(execution), task=prune(task), hostname=hostname, region=region,
        main_container_exit_code=main_container_exit_code, sidecar=sidecar,
        container_env=dict(container_env or {}), source=source)
