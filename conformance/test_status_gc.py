"""Scenario 12: STATUS follows subnet.env; GC releases what only the plugin remembers.

STATUS answers 50 while subnet.env is missing and passes once it is written, with a
delegate that speaks 1.1.0 (a stand-in: Debian's bridge stops at 1.0.0, and since
commit 8139b61 the plugin's STATUS reports that as "cannot add containers" too).

STATUS and GC exist from CNI 1.1.0; Debian's delegates (containernetworking-plugins
1.1.1) speak at most 1.0.0, so pods are added with a 1.0.0 conflist and GC runs
the same conflist at 1.1.0 (the plugin forwards GC only to delegates whose
VERSION lists 1.1.0). Flannel alone: portmap 1.1.1 fails CHECK on IPv4-only
networks (containernetworking/plugins#819).
"""

from __future__ import annotations

import dataclasses
import json
import socket
from ipaddress import ip_interface, ip_network
from pathlib import Path

import pytest

from conformance.conftest import SUBNET_ENV_V4, Node
from conformance.kernel import wait_until
from conformance.runtime import JsonObject, PluginError

FLANNEL_NETWORK = "10.244.0.0/16"
FLANNEL_SUBNET = ip_network("10.244.7.0/24")
GATEWAY = "10.244.7.1"


def flannel_only(node: Node, version: str, **delegate: object) -> JsonObject:
    return node.conflist(
        {
            "name": "cbr0",
            "cniVersion": version,
            "plugins": [{"type": "flannel", "delegate": {"hairpinMode": True, **delegate}}],
        }
    )


# A delegate that speaks 1.1.0 and is always ready. Debian's stop at 1.0.0, and the
# plugin's STATUS says a 1.1.0 configuration cannot be served by them (README,
# "State"), so success needs a delegate that knows 1.1.0. It records each call.
READY_DELEGATE = """\
#!/bin/sh
echo "$CNI_COMMAND" >> "$0.calls"
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}' ;;
STATUS) cat > "$0.status-config" ;;
*) echo '{"cniVersion":"1.1.0","code":4,"msg":"stand-in: VERSION and STATUS only"}'; exit 1 ;;
esac
"""


def ready_delegate(node: Node) -> Path:
    path = node.bin_dir / "ready-1.1.0"
    path.write_text(READY_DELEGATE)
    path.chmod(0o755)
    return path


def calls(delegate: Path) -> list[str]:
    log = delegate.with_name(delegate.name + ".calls")
    return log.read_text().split() if log.exists() else []


def assert_status_50(error: PluginError) -> None:
    assert error.plugin == "flannel"
    assert error.command == "STATUS"
    assert error.returncode != 0
    assert error.code == 50
    assert error.error.get("cniVersion") == "1.1.0"


def assert_node_untouched(node: Node) -> None:
    """STATUS creates nothing: no state, no bridge, no veth, no rule."""
    assert node.records() == []
    assert set(node.ns.links()) == {"lo"}
    node.assert_clean()


def test_status_fails_with_50_until_subnet_env_is_written(node: Node) -> None:
    delegate = ready_delegate(node)
    conflist = flannel_only(node, "1.1.0", type=delegate.name)
    node.subnet_file.unlink()  # node boot: flanneld has not written its lease yet

    with pytest.raises(PluginError) as failed:
        node.runtime.status(conflist)

    assert_status_50(failed.value)
    assert str(node.subnet_file) in failed.value.msg
    assert calls(delegate) == [], "nothing to ask the delegate before subnet.env exists"
    assert_node_untouched(node)

    node.write_subnet_env(SUBNET_ENV_V4)  # flanneld is up

    node.runtime.status(conflist)

    assert calls(delegate) == ["VERSION", "STATUS"], "STATUS is forwarded to a 1.1.0 delegate"
    forwarded = json.loads(delegate.with_name(delegate.name + ".status-config").read_text())
    assert forwarded["cniVersion"] == "1.1.0"
    assert forwarded["type"] == delegate.name
    assert forwarded["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24"}]]
    assert_node_untouched(node)


def test_status_with_debian_bridge_says_which_part_is_missing(node: Node) -> None:
    conflist = flannel_only(node, "1.1.0")  # delegate: Debian's bridge, up to 1.0.0
    node.subnet_file.unlink()

    with pytest.raises(PluginError) as no_lease:
        node.runtime.status(conflist)
    assert_status_50(no_lease.value)
    assert str(node.subnet_file) in no_lease.value.msg

    node.write_subnet_env(SUBNET_ENV_V4)

    # subnet.env is no longer the reason; the delegate's version is.
    with pytest.raises(PluginError) as old_delegate:
        node.runtime.status(conflist)
    assert_status_50(old_delegate.value)
    assert str(node.subnet_file) not in old_delegate.value.msg
    assert "bridge" in old_delegate.value.msg
    assert "1.1.0" in old_delegate.value.msg
    assert "1.0.0" in old_delegate.value.error.get("details", "")
    assert_node_untouched(node)


def test_gc_releases_an_attachment_only_the_plugin_knows(node: Node) -> None:
    add_conflist = flannel_only(node, "1.0.0")
    gc_conflist = flannel_only(node, "1.1.0")
    pods = [node.pod(label) for label in ("live1", "live2", "lost")]
    attachments = [node.attachment(pod) for pod in pods]
    results = [node.runtime.add(add_conflist, a) for a in attachments]
    addresses = [ip_interface(r["ips"][0]["address"]) for r in results]
    assert all(a.ip in FLANNEL_SUBNET for a in addresses)
    records = [f"{a.container_id}:eth0" for a in attachments]
    assert node.records() == sorted(records)
    assert node.reservations() == sorted(str(a.ip) for a in addresses)
    *live, lost = attachments
    *live_pods, lost_pod = pods
    *live_addresses, lost_address = addresses

    # The runtime crashed and lost its cache entry of the third: only the plugin knows it.
    cache_entry = node.runtime.cache_dir / f"cbr0-{lost.container_id}-eth0"
    assert cache_entry.exists()
    cache_entry.unlink()

    node.runtime.gc(gc_conflist, live)

    assert node.records() == sorted(records[:2]), "the lost attachment's record must go"
    assert node.reservations() == sorted(str(a.ip) for a in live_addresses)
    assert str(lost_address.ip) not in node.reservations()
    assert ("flannel", "GC") in node.runtime.calls
    # The lost pod's namespace still exists: GC hands it to the delegate's DEL
    # (from the record's netns attribute), which removes its interface too.
    assert lost_pod.global_addresses("eth0") == []
    assert wait_until(lambda: len(node.veths()) == 2), f"veths: {node.veths()}"
    lost_pod.remove()

    for pod, attachment, address in zip(live_pods, live, live_addresses, strict=True):
        assert pod.global_addresses("eth0") == [address]
        assert (FLANNEL_NETWORK, GATEWAY) in pod.routes(socket.AF_INET)
        assert node.ns.ping(str(address.ip)), f"{address.ip} no longer answers the gateway side"
        node.runtime.check(add_conflist, attachment)

    # GC again with the same list: nothing stale left, nothing else touched.
    node.runtime.gc(gc_conflist, live)
    assert node.records() == sorted(records[:2])

    for attachment in live:
        node.runtime.delete(add_conflist, attachment)
    node.runtime.delete(add_conflist, dataclasses.replace(lost, netns=""))
    node.assert_clean()
