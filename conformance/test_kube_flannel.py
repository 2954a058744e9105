"""Scenarios 1 and 2: kube-flannel's conflist verbatim, a port mapping, two pods talking."""

from __future__ import annotations

import socket
from ipaddress import ip_interface, ip_network

from conformance.conftest import KUBE_FLANNEL_CONFLIST, Node

PORT_MAPPING = [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]


def test_kube_flannel_conflist_with_port_mapping(node: Node) -> None:
    conflist = node.conflist(KUBE_FLANNEL_CONFLIST)
    pod = node.pod("pod")
    attachment = node.attachment(pod, portMappings=PORT_MAPPING)

    result = node.runtime.add(conflist, attachment)

    assert result["cniVersion"] == "0.3.1"
    [address] = pod.global_addresses("eth0")
    assert address.ip in ip_network("10.244.7.0/24")
    assert str(address.ip) == result["ips"][0]["address"].split("/")[0]
    assert pod.links()["eth0"]["mtu"] == 1450
    routes = pod.routes(socket.AF_INET)
    assert ("10.244.0.0/16", "10.244.7.1") in routes
    assert ("0.0.0.0/0", "10.244.7.1") in routes
    nat = node.ns.iptables_save("nat")
    assert "--dport 18080" in nat
    assert f"--to-destination {address.ip}:80" in nat
    assert node.records() == [f"{attachment.container_id}:eth0"]
    assert node.reservations() == [str(address.ip)]

    node.runtime.delete(conflist, attachment)

    assert pod.global_addresses("eth0") == []
    assert "--dport 18080" not in node.ns.iptables_save("nat")
    node.assert_clean()


def test_two_pods_reach_each_other_and_their_gateway(node: Node) -> None:
    conflist = node.conflist(KUBE_FLANNEL_CONFLIST)
    pod_a, pod_b = node.pod("a"), node.pod("b")
    a, b = node.attachment(pod_a), node.attachment(pod_b)
    result_a = node.runtime.add(conflist, a)
    result_b = node.runtime.add(conflist, b)
    address_a = ip_interface(result_a["ips"][0]["address"]).ip
    address_b = ip_interface(result_b["ips"][0]["address"]).ip
    assert address_a != address_b

    assert pod_a.ping(str(address_b))
    assert pod_b.ping(str(address_a))
    assert pod_a.ping("10.244.7.1")
    assert pod_b.ping("10.244.7.1")

    node.runtime.delete(conflist, a)
    node.runtime.delete(conflist, b)
    node.assert_clean()
