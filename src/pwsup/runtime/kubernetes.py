"""Kubernetes: pod, namespace, node and container from downward-API variables.

Detection: `KUBERNETES_SERVICE_HOST` is set (the kubelet sets it in every container of a pod
that has service links, the default). No API server call is made: the pod's own metadata is
only available through variables the pod spec exposes, and credentials to query the API are
not something a supervisor should assume.

Variables read, first one set wins (declare them with the downward API, `fieldRef`):

- pod_name: POD_NAME, KUBERNETES_POD_NAME, MY_POD_NAME (metadata.name)
- namespace: POD_NAMESPACE, KUBERNETES_NAMESPACE, KUBERNETES_POD_NAMESPACE, MY_POD_NAMESPACE
  (metadata.namespace)
- node_name: NODE_NAME, KUBERNETES_NODE_NAME, MY_NODE_NAME (spec.nodeName)
- container_name: CONTAINER_NAME, KUBERNETES_CONTAINER_NAME, MY_CONTAINER_NAME (a literal
  value: the downward API cannot expose it)
- pod_ip: POD_IP, KUBERNETES_POD_IP, MY_POD_IP (status.podIP)
- pod_uid: POD_UID, KUBERNETES_POD_UID, MY_POD_UID (metadata.uid)
- service_account: POD_SERVICE_ACCOUNT, KUBERNETES_SERVICE_ACCOUNT, MY_POD_SERVICE_ACCOUNT
  (spec.serviceAccountName)

The `MY_*` names are the ones of the Kubernetes documentation's example. Without a
namespace variable, the namespace file of the mounted service account token is read.

The CloudReactor server has no Kubernetes execution method or infrastructure type, so both
stay "Unknown" (the server then treats the Task as passive) and the details go into the
free-form JSON fields, under one `kubernetes` key: `execution_method_details` gets all of
them; the Task's `execution_method_capability_details` only those that hold for every run
(namespace, container name, service account). `ip_v4_addresses` is the pod IP, when it
is an IPv4 address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path

from pwsup.runtime.context import FetchContext, Fetcher, env_text, host_name
from pwsup.runtime.model import JsonDict, RuntimeMetadata, Scalars, assemble

NAME = "Kubernetes"
DETECTION_VARIABLE = "KUBERNETES_SERVICE_HOST"
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

VARIABLES: dict[str, tuple[str, ...]] = {
    "pod_name": ("POD_NAME", "KUBERNETES_POD_NAME", "MY_POD_NAME"),
    "namespace": ("POD_NAMESPACE", "KUBERNETES_NAMESPACE", "KUBERNETES_POD_NAMESPACE",
                  "MY_POD_NAMESPACE"),
    "node_name": ("NODE_NAME", "KUBERNETES_NODE_NAME", "MY_NODE_NAME"),
    "container_name": ("CONTAINER_NAME", "KUBERNETES_CONTAINER_NAME", "MY_CONTAINER_NAME"),
    "pod_ip": ("POD_IP", "KUBERNETES_POD_IP", "MY_POD_IP"),
    "pod_uid": ("POD_UID", "KUBERNETES_POD_UID", "MY_POD_UID"),
    "service_account": ("POD_SERVICE_ACCOUNT", "KUBERNETES_SERVICE_ACCOUNT",
                        "MY_POD_SERVICE_ACCOUNT"),
}
TASK_FIELDS = ("namespace", "container_name", "service_account")
"""Fields that are the same for every run of a Task, so they describe the Task too."""


def applies(ctx: FetchContext) -> bool:
    return env_text(ctx.environ, DETECTION_VARIABLE) is not None


def pod_details(environ: Mapping[str, str], namespace_file: Path = NAMESPACE_FILE) -> JsonDict:
    """The pod fields that are known, keyed as in the list above."""
    details = {field: env_text(environ, *names) for field, names in VARIABLES.items()}
    if details["namespace"] is None:
        details["namespace"] = _read_namespace(namespace_file)
    return {field: value for field, value in details.items() if value is not None}


def _read_namespace(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _ip_v4_list(address: str | None) -> list[str] | None:
    """`[address]` when it is an IPv4 address (a dual-stack pod may report IPv6)."""
    try:
        return [address] if address and ipaddress.ip_address(address).version == 4 else None
    except ValueError:
        return None


def fetch(ctx: FetchContext) -> RuntimeMetadata:
    pod = pod_details(ctx.environ, NAMESPACE_FILE)
    stable = {field: pod[field] for field in TASK_FIELDS if field in pod}
    return assemble(
        Scalars(ip_v4_addresses=_ip_v4_list(pod.get("pod_ip"))), source=NAME,
        details={"kubernetes": pod} if pod else None,
        capability={"kubernetes": stable} if stable else None,
        hostname=host_name())


FETCHER = Fetcher(NAME, applies=applies, fetch=fetch, requirement=DETECTION_VARIABLE)
