"""Scenario 9: an attachment the Go plugin made is torn down by this plugin (upgrade in place).

The Go plugin (flannel-io/cni-plugin) stored the delegate configuration it
rendered in ``dataDir/<container ID>``: Go's ``json.Marshal`` of a map, so
compact, keys sorted, ``<``, ``>`` and ``&`` escaped, file mode 0600. Here that
record is written by hand and the attachment is made the way the Go plugin made
it: by executing the real ``bridge`` with that very configuration.
"""

from __future__ import annotations

import json
import os
import stat
import time
from ipaddress import ip_interface, ip_network
from typing import Any

from conformance.conftest import KUBE_FLANNEL_CONFLIST, Node
from conformance.kernel import Namespace
from conformance.runtime import Attachment, JsonObject

FLANNEL_SUBNET = ip_network("10.244.7.0/24")
GATEWAY = "10.244.7.1"


def go_rendering(node: Node) -> JsonObject:
    """What the Go plugin renders for kube-flannel's conflist and this node's subnet.env."""
    return {
        "cniVersion": "0.3.1",
        "hairpinMode": True,
        "ipMasq": False,
        "ipam": {
            "dataDir": str(node.ipam_dir),
            "ranges": [[{"subnet": "10.244.7.0/24"}]],
            "routes": [{"dst": "10.244.0.0/16"}],
            "type": "host-local",
        },
        "isDefaultGateway": True,
        "isGateway": True,
        "mtu": 1450,
        "name": "cbr0",
        "type": "bridge",
    }


def go_marshal(value: Any) -> bytes:
    """Bytes as Go's encoding/json.Marshal writes a map[string]interface{}."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def go_plugin_add(node: Node, pod: Namespace, container_id: str, config: JsonObject) -> JsonObject:
    """The Go plugin's ADD: save the record under the container ID, then run the delegate."""
    record = node.data_dir / container_id
    record.write_bytes(go_marshal(config))
    os.chmod(record, 0o600)
    done = node.runtime.exec_plugin(
        config,
        "ADD",
        {"CNI_CONTAINERID": container_id, "CNI_NETNS": pod.path, "CNI_IFNAME": "eth0"},
    )
    assert done.returncode == 0, f"bridge ADD failed: {done.stdout} {done.stderr}"
    result: JsonObject = json.loads(done.stdout)
    return result


def test_del_tears_down_an_attachment_recorded_by_the_go_plugin(node: Node) -> None:
    conflist = node.conflist(KUBE_FLANNEL_CONFLIST)

    # A pod added by this plugin: its record is the Go plugin's rendering, byte for byte.
    kept_pod = node.pod("kept")
    kept = node.attachment(kept_pod)
    node.runtime.add(conflist, kept)
    kept_record = f"{kept.container_id}:eth0"
    assert node.record(kept_record) == go_rendering(node)
    assert (node.data_dir / kept_record).read_bytes() == go_marshal(go_rendering(node))
    [kept_address] = kept_pod.global_addresses("eth0")

    # A pod the Go plugin added before the upgrade.
    old_pod = node.pod("old")
    old_id = node.container_id()
    result = go_plugin_add(node, old_pod, old_id, go_rendering(node))
    [old_address] = old_pod.global_addresses("eth0")
    assert old_address.ip in FLANNEL_SUBNET
    assert old_address == ip_interface(result["ips"][0]["address"])
    assert old_address.ip != kept_address.ip
    assert sorted(node.records()) == sorted([kept_record, old_id])
    assert stat.S_IMODE(os.stat(node.data_dir / old_id).st_mode) == 0o600
    assert node.reservations() == sorted([str(kept_address.ip), str(old_address.ip)])
    assert len(node.veths()) == 2
    assert old_pod.ping(GATEWAY)

    # The runtime, now running this plugin, deletes the old pod.
    node.runtime.delete(conflist, Attachment(old_id, old_pod.path, "eth0"))

    assert node.records() == [kept_record], "the Go record must be removed"
    assert node.reservations() == [str(kept_address.ip)], "the Go pod's address must be released"
    assert len(node.veths()) == 1
    assert "eth0" not in old_pod.links()
    assert old_pod.global_addresses("eth0") == []
    # The pod this plugin added is untouched.
    assert kept_pod.global_addresses("eth0") == [kept_address]
    assert kept_pod.ping(GATEWAY)

    node.runtime.delete(conflist, kept)
    node.assert_clean()


def test_second_del_of_a_go_attachment_succeeds(node: Node) -> None:
    conflist = node.conflist(KUBE_FLANNEL_CONFLIST)
    node.data_dir.mkdir(mode=0o700)  # the Go plugin made it; no ADD of ours ran here
    pod = node.pod("old")
    old_id = node.container_id()
    go_plugin_add(node, pod, old_id, go_rendering(node))
    [address] = pod.global_addresses("eth0")
    assert node.records() == [old_id]
    assert node.reservations() == [str(address.ip)]

    node.runtime.delete(conflist, Attachment(old_id, pod.path, "eth0"))
    node.runtime.delete(conflist, Attachment(old_id, pod.path, "eth0"))

    assert "eth0" not in pod.links()
    node.assert_clean()


def test_check_and_gc_honour_go_records(node: Node) -> None:
    # At 1.0.0 the runtime hands its cached result to CHECK; GC runs at 1.1.0. Flannel
    # alone: portmap 1.1.1 fails CHECK on IPv4-only networks (containernetworking/plugins#819).
    flannel_only: JsonObject = {
        "name": "cbr0",
        "cniVersion": "1.0.0",
        "plugins": [{"type": "flannel", "delegate": {"hairpinMode": True}}],
    }
    add_conflist = node.conflist(flannel_only)
    gc_conflist = node.conflist({**flannel_only, "cniVersion": "1.1.0"})
    rendering = go_rendering(node)
    del rendering["isDefaultGateway"]
    rendering["cniVersion"] = "1.0.0"
    node.data_dir.mkdir(mode=0o700)
    pods = [node.pod("live"), node.pod("stale")]
    ids = [node.container_id() for _ in pods]
    attachments = [Attachment(cid, pod.path, "eth0") for cid, pod in zip(ids, pods, strict=True)]
    results = [go_plugin_add(node, p, cid, rendering) for p, cid in zip(pods, ids, strict=True)]
    for attachment, result in zip(attachments, results, strict=True):
        # What the runtime cached from the Go plugin's ADD.
        cache = node.runtime.cache_dir / f"cbr0-{attachment.container_id}-eth0"
        cache.parent.mkdir(exist_ok=True)
        cache.write_text(json.dumps(result))
        node.runtime.check(add_conflist, attachment)
    addresses = [ip_interface(r["ips"][0]["address"]) for r in results]
    assert node.records() == sorted(ids)
    assert node.reservations() == sorted(str(a.ip) for a in addresses)
    live, stale = attachments
    (node.runtime.cache_dir / f"cbr0-{stale.container_id}-eth0").unlink()  # runtime forgot it

    node.runtime.gc(gc_conflist, [live])

    assert node.records() == [live.container_id], "GC must remove the stale Go record only"
    assert node.reservations() == [str(addresses[0].ip)], "GC must release the Go pod's address"
    assert pods[0].global_addresses("eth0") == [addresses[0]]
    assert node.ns.ping(str(addresses[0].ip))
    node.runtime.check(add_conflist, live)

    node.runtime.delete(add_conflist, live)
    pods[1].remove()
    deadline = time.monotonic() + 5
    while node.veths() and time.monotonic() < deadline:
        time.sleep(0.05)
    node.assert_clean()
