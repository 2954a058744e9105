"""Bounded load: a burst of 32 concurrent pods and a soak of 50 ADD → CHECK → DEL cycles.

The CI version of ``campaign_load`` (same code, smaller numbers), on the real
bridge in namespaces, through the plugin and with the bridge executed
directly. It asserts what must hold whatever the machine: every operation
succeeds, every address is unique and inside the network, nothing is left
(records, host-local reservations, veths, CNI-* chains). Latencies and
throughput are printed, never asserted: the machine is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.load import (
    MODES,
    Driver,
    StageOutcome,
    burst,
    find_leaks,
    flannel_conflist,
    load_node,
    outcome_table,
    phase_table,
    pod_pool,
    ratio_table,
    rendered_delegate,
    soak,
    untouched_host,
)

BURST = 32
SOAK = 50


@pytest.fixture(scope="module", autouse=True)
def host_untouched() -> Iterator[None]:
    """Fail (never skip) when the campaign cannot run here; prove the host is as it was."""
    yield from untouched_host()


def assert_sound(outcome: StageOutcome, expected_addresses: int) -> None:
    label = f"{outcome.mode} {outcome.stage}"
    assert outcome.failures == [], f"{label}: operations failed: {outcome.failures[:5]}"
    assert outcome.problems == [], f"{label}: {outcome.problems[:5]}"
    assert len(outcome.addresses) == expected_addresses
    assert outcome.unique_addresses == expected_addresses, f"{label}: an address was reused"
    assert outcome.leaks.none, f"{label}: left {outcome.leaks.details()}"


def show(capsys: pytest.CaptureFixture[str], title: str, outcomes: list[StageOutcome]) -> None:
    phases = [p for o in outcomes for p in o.phases]
    with capsys.disabled():
        print(f"\n{title}\n{phase_table(phases)}\n{outcome_table(outcomes)}")
        print(f"flannel / bridge direct\n{ratio_table(phases)}")


def test_direct_mode_runs_exactly_what_flannel_stores(tmp_path: Path) -> None:
    """The comparison is fair: the direct conflist's plugin is flannel's record, byte for byte."""
    with pod_pool("lr", 1) as (pod,), load_node("lrn", tmp_path) as node:
        conflist = flannel_conflist(node)
        attachment = node.attachment(pod)
        node.runtime.add(conflist, attachment)
        (record,) = node.records()
        assert node.record(record) == rendered_delegate(conflist)
        assert Driver(node, "direct").conflist["plugins"] == [node.record(record)]
        node.runtime.delete(conflist, attachment)
        assert find_leaks(node).none


def test_burst_of_concurrent_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = []
    with pod_pool("lb", BURST) as pods:
        for mode in MODES:
            with load_node(f"lb{mode[:2]}", tmp_path / mode) as node:
                outcomes.append(burst(Driver(node, mode), pods))
    show(capsys, f"burst of {BURST}", outcomes)
    for outcome in outcomes:
        assert_sound(outcome, BURST)


def test_soak_of_add_check_del_cycles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = []
    with pod_pool("ls", 1) as (pod,):
        for mode in MODES:
            with load_node(f"ls{mode[:2]}", tmp_path / mode) as node:
                outcomes.append(soak(Driver(node, mode), pod, SOAK, check_every=10))
    show(capsys, f"soak of {SOAK} cycles", outcomes)
    for outcome in outcomes:
        assert_sound(outcome, SOAK)
        assert [p.ops for p in outcome.phases] == [3 * SOAK, SOAK, SOAK, SOAK]
