"""Scenario 4: configuration variants a cluster really uses, checked in the kernel.

- ``FLANNEL_NETWORK`` with two CIDRs: the pod gets a route to each.
- user ``ipam.routes``: kept before the network routes in the record and
  installed in the pod.
- extra ``ipam`` keys (host-local's ``dataDir``): passed on, so host-local
  reserves in that directory.
- ``delegate`` overrides (bridge name, MTU, hairpin mode, ipMasq): the bridge,
  the veths and the node's NAT table show them.
"""

from __future__ import annotations

import socket
from ipaddress import ip_interface, ip_network
from pathlib import Path

from conformance.conftest import Node
from conformance.runtime import JsonObject

V4_GATEWAY = "10.244.7.1"
SUBNET = ip_network("10.244.7.0/24")

SUBNET_ENV_TWO_NETWORKS = """\
FLANNEL_NETWORK=10.244.0.0/17,10.244.128.0/17
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""

SUBNET_ENV_NO_MASQ = """\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=false
"""

USER_ROUTE: JsonObject = {"dst": "10.244.200.0/24", "gw": "10.244.7.254"}


def flannel_only(delegate: JsonObject | None = None, version: str = "0.4.0") -> JsonObject:
    plugin: JsonObject = {"type": "flannel"}
    if delegate is not None:
        plugin["delegate"] = delegate
    return {"name": "cbr0", "cniVersion": version, "plugins": [plugin]}


def brport_hairpin(node: Node, port: str) -> str:
    """The bridge port's hairpin flag, read in the node's namespace ('1' or '0')."""
    done = node.ns.sh("cat", f"/sys/class/net/{port}/brport/hairpin_mode")
    return done.stdout.strip()


def test_two_flannel_networks_give_a_route_to_each(node: Node) -> None:
    node.write_subnet_env(SUBNET_ENV_TWO_NETWORKS)
    conflist = node.conflist(flannel_only())
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    result = node.runtime.add(conflist, attachment)

    [address] = pod.global_addresses("eth0")
    assert address.ip in SUBNET
    routes = pod.routes(socket.AF_INET)
    assert ("10.244.0.0/17", V4_GATEWAY) in routes
    assert ("10.244.128.0/17", V4_GATEWAY) in routes
    assert [r["dst"] for r in result["routes"]] == ["10.244.0.0/17", "10.244.128.0/17"]
    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["routes"] == [{"dst": "10.244.0.0/17"}, {"dst": "10.244.128.0/17"}]

    node.runtime.check(conflist, attachment)
    node.runtime.delete(conflist, attachment)

    assert pod.global_addresses("eth0") == []
    assert not [r for r in pod.routes(socket.AF_INET) if r[0].startswith("10.244.")]
    node.assert_clean()


def test_duplicate_flannel_networks_give_one_route(node: Node) -> None:
    """A network listed twice is dropped, so the delegate does not add its route twice."""
    node.write_subnet_env(
        SUBNET_ENV_TWO_NETWORKS.replace(
            "10.244.128.0/17\n", "10.244.128.0/17,10.244.0.0/17,10.244.128.0/17\n"
        )
    )
    conflist = node.conflist(flannel_only())
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    node.runtime.add(conflist, attachment)

    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["routes"] == [{"dst": "10.244.0.0/17"}, {"dst": "10.244.128.0/17"}]
    flannel_routes = [r for r in pod.routes(socket.AF_INET) if r[1] == V4_GATEWAY]
    assert sorted(flannel_routes) == [
        ("10.244.0.0/17", V4_GATEWAY),
        ("10.244.128.0/17", V4_GATEWAY),
    ]

    node.runtime.delete(conflist, attachment)
    node.assert_clean()


def test_user_ipam_routes_come_first_and_reach_the_kernel(node: Node) -> None:
    conflist = node.conflist(flannel_only())
    conflist["plugins"][0]["ipam"]["routes"] = [dict(USER_ROUTE)]
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    node.runtime.add(conflist, attachment)

    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["routes"] == [USER_ROUTE, {"dst": "10.244.0.0/16"}]
    routes = pod.routes(socket.AF_INET)
    assert ("10.244.200.0/24", "10.244.7.254") in routes
    assert ("10.244.0.0/16", V4_GATEWAY) in routes
    # The more specific user route is what the kernel picks for its destination.
    chosen = pod.sh("ip", "route", "get", "10.244.200.9").stdout
    assert "via 10.244.7.254" in chosen

    node.runtime.check(conflist, attachment)
    node.runtime.delete(conflist, attachment)

    assert ("10.244.200.0/24", "10.244.7.254") not in pod.routes(socket.AF_INET)
    node.assert_clean()


def test_extra_ipam_keys_reach_host_local(node: Node, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere-ipam"
    conflist = node.conflist(flannel_only())
    conflist["plugins"][0]["ipam"]["dataDir"] = str(elsewhere)
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    node.runtime.add(conflist, attachment)

    [address] = pod.global_addresses("eth0")
    assert address.ip in SUBNET
    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipam"]["dataDir"] == str(elsewhere)
    assert record["ipam"]["type"] == "host-local"
    reserved = elsewhere / "cbr0" / str(address.ip)
    assert reserved.is_file()
    assert reserved.read_text().splitlines()[0] == attachment.container_id
    assert node.reservations() == []  # nothing in the fixture's default directory

    node.runtime.delete(conflist, attachment)

    assert not reserved.exists()
    assert pod.global_addresses("eth0") == []
    node.assert_clean()


def test_delegate_overrides_bridge_name_mtu_and_hairpin(node: Node) -> None:
    delegate: JsonObject = {"bridge": "flcnibr0", "mtu": 1400, "hairpinMode": True}
    conflist = node.conflist(flannel_only(delegate))
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    node.runtime.add(conflist, attachment)

    record = node.record(f"{attachment.container_id}:eth0")
    assert record["bridge"] == "flcnibr0"
    assert record["mtu"] == 1400
    assert record["hairpinMode"] is True
    links = node.ns.links()
    assert links["flcnibr0"]["kind"] == "bridge"
    assert "cni0" not in links
    assert ip_interface(f"{V4_GATEWAY}/24") in node.ns.addresses("flcnibr0")
    [port] = node.veths()
    assert links[port]["master"] == links["flcnibr0"]["index"]
    assert links[port]["mtu"] == 1400
    assert pod.links()["eth0"]["mtu"] == 1400
    assert brport_hairpin(node, port) == "1"
    assert "hairpin on" in node.ns.sh("ip", "-d", "link", "show", port).stdout
    [address] = pod.global_addresses("eth0")
    assert pod.ping(V4_GATEWAY)
    assert node.ns.ping(str(address.ip))

    node.runtime.check(conflist, attachment)
    node.runtime.delete(conflist, attachment)

    assert node.veths() == []
    node.assert_clean()


def test_without_hairpin_override_the_port_has_hairpin_off(node: Node) -> None:
    conflist = node.conflist(flannel_only({}))
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    node.runtime.add(conflist, attachment)

    [port] = node.veths()
    assert brport_hairpin(node, port) == "0"
    assert node.ns.links()[port]["master"] == node.ns.links()["cni0"]["index"]
    assert pod.links()["eth0"]["mtu"] == 1450  # FLANNEL_MTU when not overridden

    node.runtime.delete(conflist, attachment)
    node.assert_clean()


def test_flanneld_not_masquerading_makes_the_bridge_masquerade(node: Node) -> None:
    """FLANNEL_IPMASQ=false renders ipMasq true: the bridge installs and removes its NAT."""
    node.write_subnet_env(SUBNET_ENV_NO_MASQ)
    conflist = node.conflist(flannel_only())
    pod = node.pod("pod")
    attachment = node.attachment(pod)
    assert "MASQUERADE" not in node.ns.iptables_save("nat")

    node.runtime.add(conflist, attachment)

    record = node.record(f"{attachment.container_id}:eth0")
    assert record["ipMasq"] is True
    [address] = pod.global_addresses("eth0")
    nat = node.ns.iptables_save("nat")
    assert f"-s {address.ip}/32" in nat
    assert "MASQUERADE" in nat

    node.runtime.delete(conflist, attachment)

    nat = node.ns.iptables_save("nat")
    assert f"-s {address.ip}/32" not in nat
    assert "MASQUERADE" not in nat
    node.assert_clean()
