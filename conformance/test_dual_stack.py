"""Scenario 3: IPv6-only and dual-stack leases, through Debian's bridge and host-local.

flanneld writes ``FLANNEL_IPV6_NETWORK``/``FLANNEL_IPV6_SUBNET`` next to (or
instead of) the IPv4 keys. The pod must get an address of each family the lease
has, a route to each flannel network through its family's gateway, reach another
pod over IPv6, pass CHECK, and leave nothing behind on DEL.
"""

from __future__ import annotations

import socket
from ipaddress import IPv6Address, ip_interface, ip_network

from conformance.conftest import Node
from conformance.kernel import Namespace
from conformance.runtime import JsonObject

SUBNET_ENV_V6 = """\
FLANNEL_IPV6_NETWORK=fd00:10:244::/56
FLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""

SUBNET_ENV_DUAL = """\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_IPV6_NETWORK=fd00:10:244::/56
FLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""

V4_SUBNET = ip_network("10.244.7.0/24")
V6_SUBNET = ip_network("fd00:10:244:7::/64")
V4_GATEWAY = "10.244.7.1"
V6_GATEWAY = "fd00:10:244:7::1"

FLANNEL_ONLY: JsonObject = {
    "name": "cbr0",
    "cniVersion": "1.0.0",
    "plugins": [{"type": "flannel", "delegate": {"hairpinMode": True}}],
}


def _v6_global(pod: Namespace) -> IPv6Address:
    [address] = [a for a in pod.global_addresses("eth0") if a.version == 6]
    return IPv6Address(address.ip)


def test_ipv6_only_lease_gives_an_ipv6_pod(node: Node) -> None:
    node.write_subnet_env(SUBNET_ENV_V6)
    conflist = node.conflist(FLANNEL_ONLY)
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    result = node.runtime.add(conflist, attachment)

    [ip] = result["ips"]
    assert ip_interface(ip["address"]).ip in V6_SUBNET
    assert ip["gateway"] == V6_GATEWAY
    # Kernel: one global address, IPv6, the one in the result; no IPv4 at all.
    [address] = pod.global_addresses("eth0")
    assert address.version == 6
    assert address.ip in V6_SUBNET
    assert address == ip_interface(ip["address"])
    assert not [a for a in pod.addresses("eth0") if a.version == 4]
    assert pod.links()["eth0"]["mtu"] == 1450
    assert ("fd00:10:244::/56", V6_GATEWAY) in pod.routes(socket.AF_INET6)
    assert not [dst for dst, _ in pod.routes(socket.AF_INET) if dst.startswith("10.244.")]
    # The node side: the bridge holds the IPv6 gateway (isGateway defaults to true).
    assert ip_interface(f"{V6_GATEWAY}/64") in node.ns.addresses("cni0")
    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["ranges"] == [[{"subnet": "fd00:10:244:7::/64"}]]
    assert record["ipam"]["routes"] == [{"dst": "fd00:10:244::/56"}]
    assert node.reservations() == [str(address.ip)]
    assert pod.ping(V6_GATEWAY)

    node.runtime.check(conflist, attachment)
    node.runtime.delete(conflist, attachment)

    assert pod.global_addresses("eth0") == []
    node.assert_clean()


def test_dual_stack_lease_gives_both_families_and_a_route_per_network(node: Node) -> None:
    node.write_subnet_env(SUBNET_ENV_DUAL)
    conflist = node.conflist(FLANNEL_ONLY)
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    result = node.runtime.add(conflist, attachment)

    by_family = {ip_interface(ip["address"]).version: ip for ip in result["ips"]}
    assert sorted(by_family) == [4, 6]
    assert by_family[4]["gateway"] == V4_GATEWAY
    assert by_family[6]["gateway"] == V6_GATEWAY
    addresses = pod.global_addresses("eth0")
    assert sorted(a.version for a in addresses) == [4, 6]
    for address in addresses:
        assert address.ip in (V4_SUBNET if address.version == 4 else V6_SUBNET)
        assert address == ip_interface(by_family[address.version]["address"])
    assert pod.links()["eth0"]["mtu"] == 1450
    assert ("10.244.0.0/16", V4_GATEWAY) in pod.routes(socket.AF_INET)
    assert ("fd00:10:244::/56", V6_GATEWAY) in pod.routes(socket.AF_INET6)
    bridge = node.ns.addresses("cni0")
    assert ip_interface(f"{V4_GATEWAY}/24") in bridge
    assert ip_interface(f"{V6_GATEWAY}/64") in bridge
    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["ranges"] == [
        [{"subnet": "10.244.7.0/24"}],
        [{"subnet": "fd00:10:244:7::/64"}],
    ]
    # IPv4 network routes first, then IPv6.
    assert record["ipam"]["routes"] == [{"dst": "10.244.0.0/16"}, {"dst": "fd00:10:244::/56"}]
    assert node.reservations() == sorted(str(a.ip) for a in addresses)

    # CHECK passes for both families: IPv6 routes without "gw" are fine too.
    node.runtime.check(conflist, attachment)
    node.runtime.delete(conflist, attachment)

    assert pod.global_addresses("eth0") == []
    node.assert_clean()


def test_two_dual_stack_pods_reach_each_other_over_ipv6(node: Node) -> None:
    node.write_subnet_env(SUBNET_ENV_DUAL)
    conflist = node.conflist(FLANNEL_ONLY)
    pod_a, pod_b = node.pod("a"), node.pod("b")
    a, b = node.attachment(pod_a), node.attachment(pod_b)
    node.runtime.add(conflist, a)
    node.runtime.add(conflist, b)
    address_a, address_b = _v6_global(pod_a), _v6_global(pod_b)
    assert address_a != address_b
    assert address_a in V6_SUBNET
    assert address_b in V6_SUBNET

    # kernel.ping retries while duplicate address detection settles.
    assert pod_a.ping(str(address_b))
    assert pod_b.ping(str(address_a))
    assert pod_a.ping(V6_GATEWAY)

    node.runtime.delete(conflist, a)
    node.runtime.delete(conflist, b)
    assert pod_a.global_addresses("eth0") == []
    assert pod_b.global_addresses("eth0") == []
    node.assert_clean()


def test_ipv6_only_lease_without_flanneld_masquerade_makes_the_bridge_masquerade(
    node: Node,
) -> None:
    """FLANNEL_IPMASQ=false renders ipMasq true: ip6tables NAT for the pod, gone after DEL."""
    node.write_subnet_env(SUBNET_ENV_V6.replace("FLANNEL_IPMASQ=true", "FLANNEL_IPMASQ=false"))
    conflist = node.conflist(FLANNEL_ONLY)
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    node.runtime.add(conflist, attachment)

    address = _v6_global(pod)
    assert node.record(f"{attachment.container_id}:eth0")["ipMasq"] is True
    nat6 = node.ns.sh("ip6tables-save", "-t", "nat").stdout
    assert f"-s {address}/128" in nat6
    assert "MASQUERADE" in nat6
    node.runtime.check(conflist, attachment)

    node.runtime.delete(conflist, attachment)

    nat6 = node.ns.sh("ip6tables-save", "-t", "nat").stdout
    assert f"-s {address}/128" not in nat6
    assert "MASQUERADE" not in nat6
    assert pod.global_addresses("eth0") == []
    node.assert_clean()


def test_dual_stack_with_two_ipv6_networks_and_an_ipv6_user_route(node: Node) -> None:
    node.write_subnet_env(
        SUBNET_ENV_DUAL.replace(
            "FLANNEL_IPV6_NETWORK=fd00:10:244::/56",
            "FLANNEL_IPV6_NETWORK=fd00:10:244::/56,fd00:10:244:100::/56",
        )
    )
    user_route: JsonObject = {"dst": "fd00:10:244:200::/64", "gw": "fd00:10:244:7::fe"}
    conflist = node.conflist(FLANNEL_ONLY)
    conflist["plugins"][0]["ipam"]["routes"] = [dict(user_route)]
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    node.runtime.add(conflist, attachment)

    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["routes"] == [
        user_route,
        {"dst": "10.244.0.0/16"},
        {"dst": "fd00:10:244::/56"},
        {"dst": "fd00:10:244:100::/56"},
    ]
    routes6 = pod.routes(socket.AF_INET6)
    assert ("fd00:10:244::/56", V6_GATEWAY) in routes6
    assert ("fd00:10:244:100::/56", V6_GATEWAY) in routes6
    assert ("fd00:10:244:200::/64", "fd00:10:244:7::fe") in routes6
    assert ("10.244.0.0/16", V4_GATEWAY) in pod.routes(socket.AF_INET)
    node.runtime.check(conflist, attachment)

    node.runtime.delete(conflist, attachment)

    assert not [r for r in pod.routes(socket.AF_INET6) if r[0].startswith("fd00:10:244")]
    node.assert_clean()
