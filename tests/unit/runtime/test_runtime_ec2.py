"""EC2 instance metadata (IMDSv2) → RuntimeMetadata, with an in-memory IMDS."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from runtime_fakes import FakeHttp, context, fixture

from pwsup.config.params import Params
from pwsup.runtime import ec2, imds
from pwsup.runtime.errors import MetadataError
from pwsup.runtime.http import Reply

BASE = "http://169.254.169.254"
TOKEN = "AQAEAFakeToken=="
MAC1, MAC2 = "0e:49:61:0f:c3:11", "0e:49:61:0f:c3:22"


def imds_http(items: dict[str, str], base: str = BASE) -> FakeHttp:
    def token(headers: Mapping[str, str]) -> Reply:
        return Reply(200, TOKEN) if imds.TOKEN_TTL_HEADER in headers else Reply(400, "")

    def item(text: str):  # type: ignore[no-untyped-def]
        def route(headers: Mapping[str, str]) -> Reply:
            ok = headers.get(imds.TOKEN_HEADER) == TOKEN
            return Reply(200, text) if ok else Reply(401, "")

        return route

    routes = {("GET", f"{base}/latest/{path}"): item(text) for path, text in items.items()}
    routes[("PUT", f"{base}/latest/api/token")] = token
    return FakeHttp(routes)


def test_instance_metadata_is_mapped() -> None:
    http = imds_http(fixture("ec2_imds.json"))
    metadata = ec2.fetch(context({}, params=Params(execution_method_type="AWS EC2"), http=http))

    common = {
        "ami_id": "ami-0abcdef1234567890",
        "ami_manifest_path": "(unknown)",
        "instance_type": "m7i.large",
        "reservation_id": "r-0a1b2c3d4e5f60718",
        "instance_profile": {
            "id": "AIPAEXAMPLEID1234567", "name": "report-runner",
            "arn": "arn:aws:iam::123456789012:instance-profile/batch/report-runner"},
    }
    primary = {
        "aws_account_id": "123456789012",
        "vpc": {"id": "vpc-0f1e2d3c4b5a69788", "ip_v4_cidr_blocks": ["172.31.0.0/16"],
                "ip_v6_cidr_blocks": ["2a05:d018:1::/56"]},
        "subnet": {"id": "subnet-0a1b2c3d4e5f60718", "ip_v4_cidr_blocks": ["172.31.16.0/20"],
                   "ip_v6_cidr_blocks": ["2a05:d018:1:2::/64"]},
        "security_groups": [{"id": "sg-0aaa1111bbbb2222c", "name": "batch-runners"},
                            {"id": "sg-0ddd3333eeee4444f", "name": "default"}],
        "device_number": 0,
        "eni_id": "eni-0123456789abcdef0",
        "mac_address": MAC1,
        "private_dns_name": "ip-172-31-20-57.eu-west-1.compute.internal",
        "public_dns_name": "ec2-34-240-1-2.eu-west-1.compute.amazonaws.com",
        "private_ip_v4_addresses": ["172.31.20.57", "172.31.20.58"],
        "public_ip_v4_addresses": ["34.240.1.2"],
        "ip_v6_addresses": ["2a05:d018:1:2::57"],
        "ip_v4_addresses": ["172.31.20.57", "172.31.20.58", "34.240.1.2"],
    }
    secondary = {
        "aws_account_id": "123456789012",
        "vpc": {"id": "vpc-0f1e2d3c4b5a69788", "ip_v4_cidr_blocks": ["172.31.0.0/16"],
                "ip_v6_cidr_blocks": []},
        "subnet": {"id": "subnet-0f0e0d0c0b0a09080", "ip_v4_cidr_blocks": ["172.31.32.0/20"],
                   "ip_v6_cidr_blocks": []},
        "security_groups": [{"id": "sg-0ddd3333eeee4444f", "name": "default"}],
        "device_number": 1,
        "eni_id": "eni-0fedcba9876543210",
        "mac_address": MAC2,
        "private_dns_name": "ip-172-31-40-9.eu-west-1.compute.internal",
        "private_ip_v4_addresses": ["172.31.40.9"],
        "public_ip_v4_addresses": [],
        "ip_v6_addresses": [],
        "ip_v4_addresses": ["172.31.40.9"],
    }
    settings = {
        "aws_account_id": "123456789012",
        "domain": "amazonaws.com",
        "partition": "aws",
        "tags": {"Name": "report-runner-1", "team": "data"},
        "network": {"region": "eu-west-1", "availability_zone": "eu-west-1b",
                    "mac_address": MAC1, "networks": [primary, secondary]},
    }
    assert metadata.execution == {
        "execution_method_type": "AWS EC2",
        "infrastructure_type": "AWS",
        "ip_v4_addresses": ["172.31.20.57", "172.31.20.58", "34.240.1.2"],
        "execution_method_details": {
            **common,
            "ami_launch_index": 0,
            "autoscaling_target_lifecycle_state": "InService",
            "instance_action": "none",
            "instance_id": "i-0f1e2d3c4b5a69788",
            "instance_life_cycle": "spot",
            "spot_instance_action": "terminate",
            "spot_instance_action_time": "2026-11-28T20:20:00Z",
        },
        "infrastructure_settings": settings,
    }
    stable = {key: primary[key] for key in ("aws_account_id", "vpc", "subnet", "security_groups")}
    assert metadata.task == {
        "execution_method_type": "AWS EC2",
        "infrastructure_type": "AWS",
        "execution_method_capability_details": common,
        "infrastructure_settings": {
            "aws_account_id": "123456789012", "domain": "amazonaws.com", "partition": "aws",
            "tags": {"Name": "report-runner-1", "team": "data"},
            "network": {"region": "eu-west-1", "networks": [
                stable, {key: secondary[key] for key in stable}]},
        },
    }
    assert metadata.hostname == "ip-172-31-20-57.eu-west-1.compute.internal"
    assert metadata.region == "eu-west-1"
    assert metadata.source == "AWS EC2"
    assert all(headers.get(imds.TOKEN_HEADER) == TOKEN
               for method, _, headers in http.requests if method == "GET")


def test_a_bare_instance_has_few_fields() -> None:
    items = {"meta-data/placement/availability-zone": "ap-south-1a",
             "meta-data/instance-id": "i-1"}
    metadata = ec2.fetch(context({}, http=imds_http(items)))
    assert metadata.region == "ap-south-1"
    assert metadata.execution == {
        "execution_method_type": "AWS EC2", "infrastructure_type": "AWS",
        "execution_method_details": {"instance_id": "i-1"},
        "infrastructure_settings": {"network": {"region": "ap-south-1",
                                                "availability_zone": "ap-south-1a"}},
    }


def test_without_a_token_there_is_no_ec2() -> None:
    with pytest.raises(MetadataError, match="token"):
        ec2.fetch(context({}, http=FakeHttp()))


def test_an_unexpected_status_is_an_error() -> None:
    http = imds_http({})
    http.routes[("GET", f"{BASE}/latest/dynamic/instance-identity/document")] = Reply(500, "")
    with pytest.raises(MetadataError, match="HTTP 500"):
        ec2.fetch(context({}, http=http))


@pytest.mark.parametrize(("environ", "url"), [
    ({}, "http://169.254.169.254"),
    ({"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:8111/"}, "http://127.0.0.1:8111"),
    ({"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"}, "http://[fd00:ec2::254]"),
])
def test_endpoint(environ: dict[str, str], url: str) -> None:
    assert imds.endpoint(environ) == url


def test_reading_before_connecting_is_an_error() -> None:
    with pytest.raises(MetadataError, match="not connected"):
        imds.Imds(FakeHttp(), BASE).text("meta-data/ami-id")
