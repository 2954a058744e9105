"""Scenario 10: two interfaces of one container on the flannel network, one record each.

Two conflists put eth0 and net1 of the same container on the flannel subnet
through two delegate bridges (cni0 and cni1). Both keep the network name and
host-local's dataDir, so host-local hands out two distinct addresses from
one pool (it keys reservations by container ID and ifname); with distinct
names or dataDirs both interfaces would get the same first address.
Flannel alone at cniVersion 1.0.0, so that CHECK gets the cached result
(portmap 1.1.1 fails CHECK on IPv4-only networks, containernetworking/plugins#819).
"""

from __future__ import annotations

import dataclasses
import socket
from ipaddress import ip_network

from conformance.conftest import Node
from conformance.runtime import JsonObject

FLANNEL_NETWORK = "10.244.0.0/16"
FLANNEL_SUBNET = ip_network("10.244.7.0/24")
GATEWAY = "10.244.7.1"


def on_bridge(node: Node, bridge: str) -> JsonObject:
    return node.conflist(
        {
            "name": "cbr0",
            "cniVersion": "1.0.0",
            "plugins": [{"type": "flannel", "delegate": {"bridge": bridge}}],
        }
    )


def test_two_interfaces_two_records_del_of_one_keeps_the_other(node: Node) -> None:
    first, second = on_bridge(node, "cni0"), on_bridge(node, "cni1")
    pod = node.pod("pod")
    eth0 = node.attachment(pod, "eth0")
    net1 = dataclasses.replace(eth0, ifname="net1")  # the same container

    node.runtime.add(first, eth0)
    node.runtime.add(second, net1)

    cid = eth0.container_id
    assert node.records() == sorted([f"{cid}:eth0", f"{cid}:net1"])
    assert node.record(f"{cid}:eth0")["bridge"] == "cni0"
    assert node.record(f"{cid}:net1")["bridge"] == "cni1"
    [address0] = pod.global_addresses("eth0")
    [address1] = pod.global_addresses("net1")
    assert address0.ip in FLANNEL_SUBNET
    assert address1.ip in FLANNEL_SUBNET
    assert address0.ip != address1.ip
    assert node.reservations() == sorted([str(address0.ip), str(address1.ip)])
    links = node.ns.links()
    assert links["cni0"]["kind"] == "bridge"
    assert links["cni1"]["kind"] == "bridge"
    masters = sorted(links[v]["master"] for v in node.veths())
    assert masters == sorted([links["cni0"]["index"], links["cni1"]["index"]])
    node.runtime.check(first, eth0)
    node.runtime.check(second, net1)

    node.runtime.delete(second, net1)

    assert "net1" not in pod.links()
    assert node.records() == [f"{cid}:eth0"]
    assert node.reservations() == [str(address0.ip)]
    [veth] = node.veths()
    assert node.ns.links()[veth]["master"] == links["cni0"]["index"]
    # eth0 still works.
    assert pod.global_addresses("eth0") == [address0]
    assert (FLANNEL_NETWORK, GATEWAY) in pod.routes(socket.AF_INET)
    node.runtime.check(first, eth0)
    assert pod.ping(GATEWAY)
    assert node.ns.ping(str(address0.ip))

    node.runtime.delete(first, eth0)
    assert "eth0" not in pod.links()
    node.assert_clean()
