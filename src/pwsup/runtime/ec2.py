"""AWS EC2: the instance metadata service (IMDSv2), mapped to the CloudReactor fields.

Only used when `--execution-method-type "AWS EC2"` is given and AWS_EC2_METADATA_DISABLED is
not "true": being on an EC2 instance says nothing about how the Task was started (ECS and
CodeBuild run on EC2 too), and probing IMDS elsewhere would cost a timeout.

Requests are kept few: the instance identity document gives the account, region, zone,
instance id and type, AMI and kernel in one request; then one request per remaining item
and about fifteen per network interface (IMDS has no bulk read).

Mapping:

- top level: `execution_method_type` "AWS EC2", `infrastructure_type` "AWS",
  `ip_v4_addresses` = the primary interface's private then public IPv4 addresses;
- details common to both views: `ami_id`, `ami_manifest_path`, `instance_type`,
  `reservation_id`, `instance_profile {id, name, arn}`;
- Task Execution only: `ami_launch_index` (int), `autoscaling_target_lifecycle_state`,
  `instance_action`, `instance_id`, `instance_life_cycle`, `kernel_id`,
  `spot_instance_action`, `spot_instance_action_time`;
- `infrastructure_settings`: `aws_account_id`, `domain`, `partition`, `tags` (when instance
  tags are exposed in IMDS), `network {region, availability_zone, mac_address,
  networks[]}`, each network being `aws_account_id, vpc {id, ip_v4_cidr_blocks,
  ip_v6_cidr_blocks}, subnet {id, ip_v4_cidr_blocks, ip_v6_cidr_blocks},
  security_groups[{id, name}]` and, for the Task Execution only, `device_number, eni_id,
  mac_address, private_dns_name, public_dns_name, private_ip_v4_addresses,
  public_ip_v4_addresses, ip_v6_addresses, ip_v4_addresses`.

The host name is the primary interface's private DNS name; the region is the identity
document's (else the one of the availability zone).
"""

from __future__ import annotations

from typing import Any

from pwsup.runtime.context import FetchContext, Fetcher, env_text, host_name
from pwsup.runtime.imds import Imds, endpoint
from pwsup.runtime.model import AWS, JsonDict, RuntimeMetadata, Scalars, assemble
from pwsup.runtime.regions import first_region, region_of_zone

NAME = "AWS EC2"
DISABLE_VARIABLE = "AWS_EC2_METADATA_DISABLED"
META = "meta-data/"
INTERFACES = META + "network/interfaces/macs/"


def applies(ctx: FetchContext) -> bool:
    return (env_text(ctx.environ, DISABLE_VARIABLE) or "").lower() != "true"


def fetch(ctx: FetchContext) -> RuntimeMetadata:
    imds = Imds(ctx.http, endpoint(ctx.environ))
    imds.connect()
    identity = _dict(imds.json("dynamic/instance-identity/document"))
    zone = identity.get("availabilityZone") or imds.text(META + "placement/availability-zone")
    region = first_region(identity.get("region"), region_of_zone(zone))
    primary_mac = imds.text(META + "mac")
    networks = [interface(imds, mac) for mac in _macs(imds)]
    primary = next((n for n in networks if n.get("mac_address") == primary_mac),
                   networks[0] if networks else {})
    addresses = [*primary.get("private_ip_v4_addresses", []),
                 *primary.get("public_ip_v4_addresses", [])]
    common = common_details(imds, identity)
    network = {"region": region, "availability_zone": zone, "mac_address": primary_mac,
               "networks": networks or None}
    return assemble(
        Scalars(NAME, AWS, ip_v4_addresses=addresses or None), source=NAME,
        details={**common, **instance_details(imds, identity)}, capability=common,
        settings={**account_settings(imds, identity), "network": network},
        hostname=primary.get("private_dns_name") or host_name(), region=region)


def account_settings(imds: Imds, identity: JsonDict) -> JsonDict:
    """Where the instance lives: account, DNS domain, partition, and its tags."""
    return {
        "aws_account_id": identity.get("accountId"),
        "domain": imds.text(META + "services/domain"),
        "partition": imds.text(META + "services/partition"),
        "tags": tags(imds),
    }


def common_details(imds: Imds, identity: JsonDict) -> JsonDict:
    """What every instance started the same way shares: image, type, profile."""
    profile = _dict(imds.json(META + "iam/info"))
    profile_arn = profile.get("InstanceProfileArn")
    return {
        "ami_id": identity.get("imageId") or imds.text(META + "ami-id"),
        "ami_manifest_path": imds.text(META + "ami-manifest-path"),
        "instance_type": identity.get("instanceType") or imds.text(META + "instance-type"),
        "reservation_id": imds.text(META + "reservation-id"),
        "instance_profile": {
            "id": profile.get("InstanceProfileId"),
            "name": profile_arn.rsplit("/", 1)[-1] if isinstance(profile_arn, str) else None,
            "arn": profile_arn,
        },
    }


def instance_details(imds: Imds, identity: JsonDict) -> JsonDict:
    """What identifies this instance and its current state."""
    spot = _dict(imds.json(META + "spot/instance-action"))
    return {
        "ami_launch_index": _int(imds.text(META + "ami-launch-index")),
        "autoscaling_target_lifecycle_state":
            imds.text(META + "autoscaling/target-lifecycle-state"),
        "instance_action": imds.text(META + "instance-action"),
        "instance_id": identity.get("instanceId") or imds.text(META + "instance-id"),
        "instance_life_cycle": imds.text(META + "instance-life-cycle"),
        "kernel_id": identity.get("kernelId") or imds.text(META + "kernel-id"),
        "spot_instance_action": spot.get("action"),
        "spot_instance_action_time": spot.get("time"),
    }


def interface(imds: Imds, mac: str) -> JsonDict:
    """One network interface (keys as in the module docstring)."""
    def item(name: str) -> str | None:
        return imds.text(f"{INTERFACES}{mac}/{name}")

    def items(name: str) -> list[str]:
        return imds.lines(f"{INTERFACES}{mac}/{name}")

    private, public = items("local-ipv4s"), items("public-ipv4s")
    group_ids, group_names = items("security-group-ids"), items("security-groups")
    return {
        "aws_account_id": item("owner-id"),
        "vpc": {"id": item("vpc-id"), "ip_v4_cidr_blocks": items("vpc-ipv4-cidr-blocks"),
                "ip_v6_cidr_blocks": items("vpc-ipv6-cidr-blocks")},
        "subnet": {"id": item("subnet-id"),
                   "ip_v4_cidr_blocks": items("subnet-ipv4-cidr-blocks")
                   or items("subnet-ipv4-cidr-block"),
                   "ip_v6_cidr_blocks": items("subnet-ipv6-cidr-blocks")},
        "security_groups": [{"id": group_id, "name": name}
                            for group_id, name in zip(group_ids, group_names, strict=False)],
        "device_number": _int(item("device-number")),
        "eni_id": item("interface-id"),
        "mac_address": mac,
        "private_dns_name": item("local-hostname"),
        "public_dns_name": item("public-hostname"),
        "private_ip_v4_addresses": private,
        "public_ip_v4_addresses": public,
        "ip_v6_addresses": items("ipv6s"),
        "ip_v4_addresses": private + public,
    }


def tags(imds: Imds) -> dict[str, str | None] | None:
    """Instance tags, when the instance exposes them in IMDS (404 otherwise)."""
    keys = imds.lines(META + "tags/instance")
    return {key: imds.text(f"{META}tags/instance/{key}") for key in keys} or None


def _macs(imds: Imds) -> list[str]:
    return [line.rstrip("/") for line in imds.lines(INTERFACES)]


def _dict(value: Any) -> JsonDict:
    return value if isinstance(value, dict) else {}


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


FETCHER = Fetcher(NAME, applies=applies, fetch=fetch,
                  requirement=f"{DISABLE_VARIABLE} not set to true")
