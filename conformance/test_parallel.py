"""Scenario 11: 32 pods added, then deleted, all at once, as a runtime does."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_interface, ip_network

from conformance.conftest import KUBE_FLANNEL_CONFLIST, Node
from conformance.runtime import Attachment, JsonObject

PODS = 32
FLANNEL_SUBNET = ip_network("10.244.7.0/24")


def test_32_pods_added_and_deleted_concurrently(node: Node) -> None:
    conflist = node.conflist(KUBE_FLANNEL_CONFLIST)
    pods = [node.pod(f"p{i}") for i in range(PODS)]  # namespaces first, sequentially
    attachments = [node.attachment(pod) for pod in pods]

    def add(attachment: Attachment) -> JsonObject:
        return node.runtime.add(conflist, attachment)

    with ThreadPoolExecutor(max_workers=PODS) as pool:
        results = list(pool.map(add, attachments))  # re-raises the first failed ADD

    addresses = [ip_interface(r["ips"][0]["address"]) for r in results]
    assert len({a.ip for a in addresses}) == PODS, "an address was handed out twice"
    assert all(a.ip in FLANNEL_SUBNET for a in addresses)
    for pod, address in zip(pods, addresses, strict=True):
        assert pod.global_addresses("eth0") == [address]
    assert node.records() == sorted(f"{a.container_id}:eth0" for a in attachments)
    assert node.reservations() == sorted(str(a.ip) for a in addresses)
    assert len(node.veths()) == PODS
    assert not any(name.startswith(".") for name in node.records()), "temporary files left"
    # The bridge really connects them: the first pod reaches the last one.
    assert pods[0].ping(str(addresses[-1].ip))

    def delete(attachment: Attachment) -> None:
        node.runtime.delete(conflist, attachment)

    with ThreadPoolExecutor(max_workers=PODS) as pool:
        list(pool.map(delete, attachments))

    for pod in pods:
        assert "eth0" not in pod.links()
    node.assert_clean()
