"""Scenario 5: delegates other than bridge (Debian's macvlan and ipvlan).

Both need a master link in the node's namespace. This kernel has no ``dummy``
link type, so the suite makes a veth pair in the node's namespace and uses one
end as the master; the pair is deleted before ``node.assert_clean()`` (which
counts the node's veths).

ipvlan depends on the kernel: some kernels (this machine's among them) have no
ipvlan support, and ``ip link add ... type ipvlan`` answers "Unknown device
type". The ipvlan test never skips: it first probes the kernel by creating an
ipvlan link on a veth in a scratch namespace of the node fixture, then

- where ipvlan is supported, asserts a full ADD/CHECK/DEL with the pod's
  address inside FLANNEL_SUBNET and the ipvlan link in the pod;
- where it is not, asserts that the plugin's ADD fails with the delegate's
  CNI error object passed through unchanged (the same code, msg and details
  the ipvlan plugin gives when executed directly with the same rendering, its
  msg naming the failure to create the ipvlan link; on a kernel without
  ipvlan, Debian's ipvlan 1.1.1 says code 999, "failed to create ipvlan:
  operation not supported"), and that the rollback
  left nothing behind: no state record, no host-local reservation, no link in
  the pod.
"""

from __future__ import annotations

import socket
from ipaddress import ip_interface, ip_network

import pytest

from conformance.conftest import Node
from conformance.kernel import Namespace
from conformance.runtime import Attachment, JsonObject, PluginError

SUBNET = ip_network("10.244.7.0/24")
GATEWAY = "10.244.7.1"
MASTER = "flmaster0"
MASTER_PEER = "flmaster0p"


def flannel_only(delegate: JsonObject, version: str = "1.0.0") -> JsonObject:
    return {
        "name": "cbr0",
        "cniVersion": version,
        "plugins": [{"type": "flannel", "delegate": delegate}],
    }


def make_master(namespace: Namespace) -> None:
    """A veth pair, both ends up, whose first end serves as the master link."""
    namespace.sh("ip", "link", "add", MASTER, "type", "veth", "peer", "name", MASTER_PEER)
    namespace.sh("ip", "link", "set", MASTER, "up")
    namespace.sh("ip", "link", "set", MASTER_PEER, "up")


def remove_master(namespace: Namespace) -> None:
    namespace.sh("ip", "link", "del", MASTER)
    assert MASTER not in namespace.links()
    assert MASTER_PEER not in namespace.links()


def kernel_has_ipvlan(node: Node) -> bool:
    """Whether this kernel creates ipvlan links (probed in a scratch namespace)."""
    scratch = node.pod("probe")
    scratch.sh("ip", "link", "add", "probe0", "type", "veth", "peer", "name", "probe1")
    ipvlan = ("ip", "link", "add", "probeipv", "link", "probe0", "type", "ipvlan", "mode", "l2")
    made = scratch.sh(*ipvlan, check=False)
    supported = made.returncode == 0
    if supported:
        assert scratch.links()["probeipv"]["kind"] == "ipvlan"
    else:
        assert "probeipv" not in scratch.links()
    scratch.remove()
    assert not scratch.exists()
    return supported


def assert_attached(node: Node, pod: Namespace, attachment: Attachment, kind: str) -> None:
    """The pod's eth0 is a ``kind`` link with its address in FLANNEL_SUBNET and routes."""
    eth0 = pod.links()["eth0"]
    assert eth0["kind"] == kind
    assert eth0["mtu"] == 1450
    [address] = pod.global_addresses("eth0")
    assert address.ip in SUBNET
    assert ("10.244.0.0/16", GATEWAY) in pod.routes(socket.AF_INET)
    assert node.records() == [f"{attachment.container_id}:eth0"]
    assert node.reservations() == [str(address.ip)]
    # Nothing of a bridge: macvlan and ipvlan need neither cni0 nor veths in the node.
    links = node.ns.links()
    assert "cni0" not in links
    assert sorted(n for n, link in links.items() if link["kind"] == "veth") == sorted(
        [MASTER, MASTER_PEER]
    )


def test_macvlan_delegate_add_check_del_and_two_pods_talk(node: Node) -> None:
    make_master(node.ns)
    conflist = node.conflist(flannel_only({"type": "macvlan", "master": MASTER, "mode": "bridge"}))
    pod_a, pod_b = node.pod("a"), node.pod("b")
    a, b = node.attachment(pod_a), node.attachment(pod_b)

    result_a = node.runtime.add(conflist, a)

    assert_attached(node, pod_a, a, "macvlan")
    [ip] = result_a["ips"]
    assert pod_a.global_addresses("eth0") == [ip_interface(ip["address"])]
    record = node.record(f"{a.container_id}:eth0")
    assert record["type"] == "macvlan"
    assert record["master"] == MASTER
    assert "isGateway" not in record  # bridge-only key
    assert record["ipMasq"] is False
    assert record["mtu"] == 1450

    node.runtime.check(conflist, a)
    result_b = node.runtime.add(conflist, b)
    address_a = ip_interface(result_a["ips"][0]["address"]).ip
    address_b = ip_interface(result_b["ips"][0]["address"]).ip
    assert address_a != address_b
    # Sibling macvlan links in bridge mode on one master reach each other.
    assert pod_a.ping(str(address_b))
    assert pod_b.ping(str(address_a))

    node.runtime.delete(conflist, a)
    node.runtime.delete(conflist, b)

    assert "eth0" not in pod_a.links()
    assert "eth0" not in pod_b.links()
    remove_master(node.ns)
    node.assert_clean()


def test_ipvlan_delegate_follows_the_kernel(node: Node) -> None:
    """ipvlan works where the kernel has it; elsewhere its error passes through, nothing stays.

    See the module docstring: the kernel is probed first and the test asserts
    one of the two behaviours; it never skips.
    """
    supported = kernel_has_ipvlan(node)
    make_master(node.ns)
    conflist = node.conflist(flannel_only({"type": "ipvlan", "master": MASTER, "mode": "l2"}))
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    if supported:
        node.runtime.add(conflist, attachment)
        assert_attached(node, pod, attachment, "ipvlan")
        node.runtime.check(conflist, attachment)
        node.runtime.delete(conflist, attachment)
        assert "eth0" not in pod.links()
    else:
        direct = ipvlan_error_when_executed_directly(node, conflist, pod)
        with pytest.raises(PluginError) as raised:
            node.runtime.add(conflist, attachment)
        error = raised.value.error
        assert raised.value.plugin == "flannel"
        assert error["code"] == direct["code"]
        assert error["msg"] == direct["msg"]
        assert error.get("details", "") == direct.get("details", "")
        assert error["msg"].startswith("failed to create ipvlan")
        assert error["cniVersion"] == "1.0.0"
        # The rollback left nothing: no record, no reservation, no link in the pod.
        assert node.records() == []
        assert node.reservations() == []
        assert "eth0" not in pod.links()
        assert pod.global_addresses("eth0") == []
        # A runtime's DEL after the failed ADD still succeeds (idempotent).
        node.runtime.delete(conflist, attachment)

    remove_master(node.ns)
    node.assert_clean()


def ipvlan_error_when_executed_directly(
    node: Node, conflist: JsonObject, pod: Namespace
) -> JsonObject:
    """What Debian's ipvlan prints when executed without flannel, with flannel's rendering."""
    plugin = conflist["plugins"][0]
    rendered: JsonObject = {
        **plugin["delegate"],
        "name": conflist["name"],
        "cniVersion": conflist["cniVersion"],
        "ipMasq": False,
        "mtu": 1450,
        "ipam": {
            "type": "host-local",
            "dataDir": plugin["ipam"]["dataDir"],
            "ranges": [[{"subnet": str(SUBNET)}]],
            "routes": [{"dst": "10.244.0.0/16"}],
        },
    }
    env = {"CNI_CONTAINERID": "direct0", "CNI_NETNS": pod.path, "CNI_IFNAME": "eth0"}
    done = node.runtime.exec_plugin(rendered, "ADD", env)
    assert done.returncode != 0, "ipvlan ADD succeeded although the kernel has no ipvlan"
    node.runtime.invoke(rendered, "DEL", env)
    assert node.reservations() == []
    error = PluginError("ipvlan", "ADD", done.returncode, done.stdout, done.stderr).error
    assert error, f"ipvlan printed no CNI error object: {done.stdout!r}"
    return error
