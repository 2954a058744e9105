"""Scenario 7: CHECK, DEL twice, DEL of a vanished pod, DEL after a subnet change.

Conflists here hold flannel alone at cniVersion 1.0.0: the runtime hands the
cached ADD result to CHECK and DEL from 0.4.0 on, and Debian's delegates
(containernetworking-plugins 1.1.1) speak at most 1.0.0. portmap is left out
on purpose: its 1.1.1 CHECK fails on IPv4-only networks
(containernetworking/plugins#819), which would hide what CHECK says about
flannel.
"""

from __future__ import annotations

import dataclasses
import socket
from ipaddress import IPv4Interface, IPv6Interface, ip_network
from typing import Any

import pytest

from conformance.conftest import Node
from conformance.kernel import Namespace, wait_until
from conformance.runtime import Attachment, JsonObject, PluginError

FLANNEL_NETWORK = "10.244.0.0/16"
FLANNEL_SUBNET = ip_network("10.244.7.0/24")
GATEWAY = "10.244.7.1"

SUBNET_ENV_MOVED = """\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.8.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""


def flannel_only(node: Node, version: str = "1.0.0") -> JsonObject:
    return node.conflist(
        {
            "name": "cbr0",
            "cniVersion": version,
            "plugins": [{"type": "flannel", "delegate": {"hairpinMode": True}}],
        }
    )


def added(
    node: Node, conflist: JsonObject, label: str
) -> tuple[Namespace, Attachment, IPv4Interface | IPv6Interface]:
    """A pod added to the network; its address as the kernel shows it."""
    pod = node.pod(label)
    attachment = node.attachment(pod)
    result = node.runtime.add(conflist, attachment)
    [address] = pod.global_addresses("eth0")
    assert address.ip in FLANNEL_SUBNET
    assert str(address) == result["ips"][0]["address"]
    assert (FLANNEL_NETWORK, GATEWAY) in pod.routes(socket.AF_INET)
    assert node.records() == [f"{attachment.container_id}:eth0"]
    assert node.reservations() == [str(address.ip)]
    return pod, attachment, address


def assert_cni_error(error: PluginError) -> None:
    """A failure as the spec wants it: non-zero exit and an error object on stdout."""
    assert error.plugin == "flannel"
    assert error.returncode != 0
    body: dict[str, Any] = error.error
    assert isinstance(body.get("code"), int), f"no CNI error object: {error.stdout!r}"
    assert isinstance(body.get("msg"), str)
    assert body["msg"] != ""
    assert body.get("cniVersion") == "1.0.0"


def test_check_after_add_passes(node: Node) -> None:
    conflist = flannel_only(node)
    pod, attachment, address = added(node, conflist, "pod")

    node.runtime.check(conflist, attachment)
    node.runtime.check(conflist, attachment)  # CHECK changes nothing

    assert pod.global_addresses("eth0") == [address]
    assert node.records() == [f"{attachment.container_id}:eth0"]
    assert node.reservations() == [str(address.ip)]
    assert pod.ping(GATEWAY)

    node.runtime.delete(conflist, attachment)
    assert pod.global_addresses("eth0") == []
    node.assert_clean()


def test_check_fails_when_the_pod_lost_its_address(node: Node) -> None:
    conflist = flannel_only(node)
    pod, attachment, address = added(node, conflist, "noaddr")

    pod.delete_address("eth0", address)
    assert pod.global_addresses("eth0") == []

    with pytest.raises(PluginError) as failed:
        node.runtime.check(conflist, attachment)
    assert_cni_error(failed.value)
    assert str(address) in failed.value.msg  # bridge's own words, passed on unchanged
    assert node.records() == [f"{attachment.container_id}:eth0"], "CHECK must not drop state"
    assert node.reservations() == [str(address.ip)]

    node.runtime.delete(conflist, attachment)
    assert "eth0" not in pod.links()
    node.assert_clean()


def test_check_fails_when_the_route_to_the_flannel_network_is_gone(node: Node) -> None:
    conflist = flannel_only(node)
    pod, attachment, address = added(node, conflist, "noroute")

    pod.delete_route(FLANNEL_NETWORK)
    assert FLANNEL_NETWORK not in [dst for dst, _ in pod.routes(socket.AF_INET)]
    assert pod.global_addresses("eth0") == [address]

    with pytest.raises(PluginError) as failed:
        node.runtime.check(conflist, attachment)
    assert_cni_error(failed.value)
    # The delegate's error object is passed on unchanged (Go spells the route its own way).
    assert "10.244.0.0" in failed.value.msg
    assert node.records() == [f"{attachment.container_id}:eth0"]

    node.runtime.delete(conflist, attachment)
    node.assert_clean()


def test_del_twice_succeeds(node: Node) -> None:
    conflist = flannel_only(node)
    pod, attachment, _ = added(node, conflist, "twice")

    node.runtime.delete(conflist, attachment)
    assert "eth0" not in pod.links()
    node.assert_clean()

    node.runtime.delete(conflist, attachment)  # no cache, no record: still success
    assert "eth0" not in pod.links()
    node.assert_clean()


@pytest.mark.parametrize("netns", ["stale path", "empty"])
def test_del_after_the_pod_namespace_is_gone(node: Node, netns: str) -> None:
    conflist = flannel_only(node)
    pod, attachment, address = added(node, conflist, "gone")
    assert len(node.veths()) == 1

    pod.remove()
    assert not pod.exists()
    # The kernel tears a namespace down asynchronously; its veth pair goes with it.
    assert wait_until(lambda: node.veths() == []), f"veth left: {node.veths()}"
    assert node.reservations() == [str(address.ip)], "the kernel does not release IPAM"

    # A runtime passes the path it had (now stale); libcni passes what it has, maybe "".
    gone = attachment if netns == "stale path" else dataclasses.replace(attachment, netns="")
    node.runtime.delete(conflist, gone)

    assert node.reservations() == []
    assert node.records() == []
    node.assert_clean()


def test_del_after_the_subnet_changed_releases_what_add_took(node: Node) -> None:
    conflist = flannel_only(node)
    pod, attachment, address = added(node, conflist, "moved")
    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24"}]]

    node.write_subnet_env(SUBNET_ENV_MOVED)  # flanneld leased another subnet

    with pytest.raises(PluginError) as drifted:
        node.runtime.check(conflist, attachment)
    assert_cni_error(drifted.value)
    assert drifted.value.code == 102
    assert pod.global_addresses("eth0") == [address]

    node.runtime.delete(conflist, attachment)

    assert node.reservations() == [], f"{address.ip} leaked in host-local"
    assert node.records() == []
    assert pod.global_addresses("eth0") == []
    assert "eth0" not in pod.links()
    node.assert_clean()
