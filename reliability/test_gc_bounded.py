"""Bounded GC at scale: 500 stale attachments beside 10 live pods, one GC.

The CI version of ``campaign_gc`` (same code, smaller numbers): exactly the
stale records and reservations go, the live pods keep theirs and still pass
CHECK and answer ping, and the node is empty once they are deleted. The GC's
wall time and peak memory are printed, never asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.campaign_gc import report, run_gc_campaign
from reliability.load import (
    cni_chains,
    flannel_conflist,
    load_node,
    pod_pool,
    untouched_host,
)

STALE = 500
LIVE = 10


@pytest.fixture(scope="module", autouse=True)
def host_untouched() -> Iterator[None]:
    """Fail (never skip) when the campaign cannot run here; prove the host is as it was."""
    yield from untouched_host()


def test_gc_removes_exactly_the_stale_attachments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_gc_campaign(STALE, LIVE, tmp_path)
    with capsys.disabled():
        print(f"\n{report(outcome)}")
    assert outcome.problems == []
    assert outcome.gc is not None
    assert outcome.gc.returncode == 0
    assert outcome.stale_records_left == 0
    assert outcome.stale_reservations_left == 0
    assert outcome.live_records_kept == LIVE
    assert outcome.live_reservations_kept == LIVE
    assert outcome.live_checked == LIVE
    assert outcome.live_pinged == LIVE
    assert outcome.second_gc is not None
    assert outcome.second_gc.returncode == 0
    assert outcome.leaks_after_cleanup == "none"
    assert outcome.ok


def test_gc_of_a_forgotten_pod_leaves_no_masquerade_chain(tmp_path: Path) -> None:
    """A pod the runtime forgot (its cache entry lost) while its namespace still exists.

    libcni's own GC would DEL it with the cached netns and the bridge would
    remove its interface and its chain; the plugin's GC is the only one that
    knows it, so it must release everything the attachment holds.
    """
    with pod_pool("gf", 2) as pods, load_node("gfn", tmp_path) as node:
        add_conflist = flannel_conflist(node)
        live, forgotten = (node.attachment(pod) for pod in pods)
        node.runtime.add(add_conflist, live)
        node.runtime.add(add_conflist, forgotten)
        chains_before = set(cni_chains(node.ns))
        assert len(chains_before) == 2, "the bridge masquerades: one chain per pod"
        (node.runtime.cache_dir / f"cbr0-{forgotten.container_id}-eth0").unlink()
        try:
            node.runtime.gc(flannel_conflist(node, "1.1.0"), [live])

            assert node.records() == [f"{live.container_id}:eth0"]
            assert len(node.reservations()) == 1
            nat = node.ns.iptables_save("nat")
            assert forgotten.container_id not in nat, (
                f"the forgotten pod's masquerade rules are left:\n{nat}"
            )
            assert len(set(cni_chains(node.ns))) == 1
            assert len(node.veths()) == 1, f"veths: {node.veths()}"
        finally:
            node.runtime.delete(add_conflist, live)
