"""Scenario 8: a failed ADD leaves nothing behind; a failed DEL keeps what a retry needs."""

from __future__ import annotations

import socket
from ipaddress import ip_network

import pytest

from conformance.conftest import KUBE_FLANNEL_CONFLIST, Node
from conformance.runtime import PluginError

FLANNEL_SUBNET = ip_network("10.244.7.0/24")


def test_add_failing_in_the_delegate_leaves_no_state(node: Node) -> None:
    conflist = node.conflist(KUBE_FLANNEL_CONFLIST)
    pod = node.pod("taken")
    # eth0 is taken before ADD (a veth pair: this kernel has no dummy link type).
    pod.sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0")
    assert {"eth0", "other0"} <= set(pod.links())
    attachment = node.attachment(pod)

    with pytest.raises(PluginError) as failed:
        node.runtime.add(conflist, attachment)

    error = failed.value
    assert error.plugin == "flannel"
    assert error.returncode != 0
    assert isinstance(error.code, int)
    assert error.error.get("cniVersion") == "0.3.1"
    assert "eth0" in error.msg
    assert "already exists" in error.msg
    # The delegate's DEL ran and the record went with it: nothing for anyone to clean.
    assert node.records() == []
    assert node.reservations() == []
    assert node.veths() == []
    assert pod.global_addresses("eth0") == []
    assert pod.routes(socket.AF_INET) == []
    assert node.runtime.cached_result(conflist, attachment) is None
    # The rollback is bridge's DEL of CNI_IFNAME in the pod: it removes the eth0 that
    # was there before ADD, peer included (one end of a veth pair takes the other along).
    assert "eth0" not in pod.links()
    assert "other0" not in pod.links()

    # The runtime's DEL after a failed ADD (libcni callers do it) still succeeds.
    node.runtime.delete(conflist, attachment)
    node.assert_clean()


def test_failed_del_keeps_the_record_and_a_retry_cleans_up(node: Node) -> None:
    conflist = node.conflist(KUBE_FLANNEL_CONFLIST)
    pod = node.pod("retry")
    attachment = node.attachment(pod)
    node.runtime.add(conflist, attachment)
    [address] = pod.global_addresses("eth0")
    assert address.ip in FLANNEL_SUBNET
    record = f"{attachment.container_id}:eth0"
    assert node.records() == [record]
    assert node.reservations() == [str(address.ip)]
    [veth] = node.veths()

    # host-local's DEL fails for real: its network directory is a regular file.
    network_dir = node.ipam_dir / "cbr0"
    aside = node.ipam_dir / "cbr0.aside"
    network_dir.rename(aside)
    network_dir.write_text("not a directory\n")
    try:
        with pytest.raises(PluginError) as failed:
            node.runtime.delete(conflist, attachment)
    finally:
        network_dir.unlink()
        aside.rename(network_dir)

    error = failed.value
    assert error.plugin == "flannel"
    assert error.command == "DEL"
    assert error.returncode != 0
    assert isinstance(error.code, int)
    assert error.msg != ""
    assert node.records() == [record], "the record must survive a failed DEL"
    assert node.record(record)["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24"}]]
    assert node.reservations() == [str(address.ip)], "the address is still held"
    # bridge 1.1.1 removes the pod's link before it calls IPAM's DEL: the veth is gone
    # already, only the reservation (and so the record that can release it) remains.
    assert veth not in node.veths()
    assert "eth0" not in pod.links()

    node.runtime.delete(conflist, attachment)

    assert node.records() == []
    assert node.reservations() == []
    node.assert_clean()
