"""Scenario 6: every cniVersion from 0.3.0 to 1.1.0 with a flannel-only conflist.

The ADD result is the delegate's, in the configuration's version: ``ips``
entries carry ``"version"`` before 1.0.0 and not from 1.0.0 on. CHECK exists
from 0.4.0 (and passes with Debian's bridge thanks to the plugin's
route-gateway handling, containernetworking/plugins#886); asked of an older
configuration it is error 1. Debian's delegates (containernetworking-plugins
1.1.1) stop at 1.0.0, so a 1.1.0 ADD fails with the delegate's error 1 naming
the version, and the rollback leaves nothing behind.
"""

from __future__ import annotations

import socket
from ipaddress import ip_interface, ip_network

import pytest

from conformance.conftest import Node
from conformance.kernel import Namespace
from conformance.runtime import JsonObject, PluginError, version_key

SUBNET = ip_network("10.244.7.0/24")
GATEWAY = "10.244.7.1"
WORKING_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")


def flannel_only(version: str) -> JsonObject:
    return {
        "name": "cbr0",
        "cniVersion": version,
        "plugins": [{"type": "flannel", "delegate": {"isDefaultGateway": True}}],
    }


@pytest.mark.parametrize("version", WORKING_VERSIONS)
def test_add_check_del_in_each_version(node: Node, version: str) -> None:
    conflist = node.conflist(flannel_only(version))
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    result = node.runtime.add(conflist, attachment)

    # The result's shape is the version's.
    assert result["cniVersion"] == version
    [ip] = result["ips"]
    if version_key(version) < (1, 0, 0):
        assert ip["version"] == "4"
    else:
        assert "version" not in ip
    assert ip["gateway"] == GATEWAY
    interfaces = result["interfaces"]
    assert interfaces[ip["interface"]]["name"] == "eth0"
    assert interfaces[ip["interface"]]["sandbox"] == pod.path
    assert {"dst": "10.244.0.0/16"} in result["routes"]
    # The kernel agrees with the result.
    [address] = pod.global_addresses("eth0")
    assert address == ip_interface(ip["address"])
    assert address.ip in SUBNET
    assert pod.links()["eth0"]["mtu"] == 1450
    routes = pod.routes(socket.AF_INET)
    assert ("10.244.0.0/16", GATEWAY) in routes
    assert ("0.0.0.0/0", GATEWAY) in routes
    assert node.record(f"{attachment.container_id}:eth0")["cniVersion"] == version
    assert node.reservations() == [str(address.ip)]
    assert pod.ping(GATEWAY)

    if version_key(version) >= (0, 4, 0):
        node.runtime.check(conflist, attachment)
    else:
        # CHECK does not exist before 0.4.0: an error, not a silent success.
        config = node.runtime.request_config(conflist, conflist["plugins"][0], {}, result)
        env = {
            "CNI_CONTAINERID": attachment.container_id,
            "CNI_NETNS": attachment.netns,
            "CNI_IFNAME": attachment.ifname,
        }
        with pytest.raises(PluginError) as raised:
            node.runtime.invoke(config, "CHECK", env)
        assert raised.value.code == 1
        assert pod.global_addresses("eth0") == [address]  # CHECK touched nothing

    node.runtime.delete(conflist, attachment)

    assert "eth0" not in pod.links()
    assert pod.global_addresses("eth0") == []
    node.assert_clean()


def test_version_1_1_0_is_refused_by_debian_delegates_and_nothing_stays(node: Node) -> None:
    conflist = node.conflist(flannel_only("1.1.0"))
    pod = node.pod("pod")
    attachment = node.attachment(pod)

    with pytest.raises(PluginError) as raised:
        node.runtime.add(conflist, attachment)

    error = raised.value
    assert error.plugin == "flannel"
    assert error.code == 1
    # bridge's error object passed through unchanged: its msg is generic and its
    # details name the refused version and the versions it supports.
    assert error.msg == "incompatible CNI versions"
    details = str(error.error["details"])
    assert 'config is "1.1.0"' in details
    assert '"1.0.0"' in details
    assert error.error["cniVersion"] == "1.1.0"
    direct = bridge_error_when_executed_directly(node, pod)
    assert (error.code, error.msg, details) == (direct["code"], direct["msg"], direct["details"])
    # Nothing is left: no record, no reservation, no veth, no bridge port, no pod link.
    assert node.records() == []
    assert node.reservations() == []
    assert node.veths() == []
    assert "eth0" not in pod.links()
    assert pod.global_addresses("eth0") == []
    assert not [r for r in pod.routes(socket.AF_INET) if r[0].startswith("10.244.")]
    # The runtime's DEL after the failed ADD succeeds and changes nothing.
    node.runtime.delete(conflist, attachment)
    node.assert_clean()


def bridge_error_when_executed_directly(node: Node, pod: Namespace) -> JsonObject:
    """Debian's bridge refusing a 1.1.0 configuration, executed without flannel."""
    config: JsonObject = {"cniVersion": "1.1.0", "name": "cbr0", "type": "bridge"}
    env = {"CNI_CONTAINERID": "direct0", "CNI_NETNS": pod.path, "CNI_IFNAME": "eth0"}
    done = node.runtime.exec_plugin(config, "ADD", env)
    assert done.returncode != 0
    error = PluginError("bridge", "ADD", done.returncode, done.stdout, done.stderr).error
    assert error["code"] == 1
    return error


def test_status_of_1_1_0_says_add_cannot_be_served_when_the_delegate_refuses_it(
    node: Node,
) -> None:
    """Spec §2: STATUS exits 0 only when ADD could be served, otherwise error 50.

    With Debian's delegates every 1.1.0 ADD fails (error 1, above), so STATUS
    of the same configuration must not report the network ready.
    """
    conflist = node.conflist(flannel_only("1.1.0"))
    pod = node.pod("pod")
    attachment = node.attachment(pod)
    with pytest.raises(PluginError) as add_failed:
        node.runtime.add(conflist, attachment)
    assert add_failed.value.code == 1
    assert "eth0" not in pod.links()
    node.assert_clean()

    with pytest.raises(PluginError) as raised:
        node.runtime.status(conflist)

    assert raised.value.code in (50, 51)
    assert "1.1.0" in raised.value.msg + str(raised.value.error.get("details", ""))
    node.assert_clean()
