"""``doctor``'s verdicts on gathered facts: one finding per check, saying what to do."""

from __future__ import annotations

import json

import pytest
from returns.result import Failure, Result, Success

from core.conflist import ConfListing, Network, parse_network
from core.errors import CniError
from core.facts import (
    DIRECTORY,
    OTHER,
    REGULAR,
    SYMLINK,
    DataDirFacts,
    EntryFacts,
    FileInfo,
    PluginFacts,
    PluginNeed,
    SubnetFacts,
)
from core.findings import (
    Finding,
    conf_findings,
    data_dir_findings,
    entry_findings,
    plugin_finding,
    report,
    subnet_finding,
)
from core.records import TEMP_ABANDONED_AFTER_SECONDS
from core.subnet_env import Lease, parse_subnet_env
from core.targets import Target
from tests.strategies import JsonObject

ENV = (
    b"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n"
    b"FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
)
LEASE = parse_subnet_env(ENV, "subnet.env").unwrap()
MOVED = parse_subnet_env(ENV.replace(b"7.1/24", b"9.1/24"), "subnet.env").unwrap()
RECORD: JsonObject = {
    "name": "cbr0",
    "type": "bridge",
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.7.0/24"}]]},
}
DIR = FileInfo(DIRECTORY, 0o700, 0, 50.0)
FILE = FileInfo(REGULAR, 0o600, 0, 200.0)
NETNS = "/var/run/netns/pod"
READABLE: Result[JsonObject, CniError] = Success(RECORD)


def problems(findings: list[Finding]) -> list[str]:
    return [f.message for f in findings if not f.ok]


def record(
    file: str = "c1:eth0",
    info: FileInfo = FILE,
    content: Result[JsonObject, CniError] | None = READABLE,
    netns: str | None = NETNS,
    exists: bool | None = True,
) -> EntryFacts:
    return EntryFacts(file, info, content, netns, exists)


# -- configuration -------------------------------------------------------------------


def parsed(obj: object, name: str) -> tuple[str, Result[Network, CniError]]:
    path = f"/etc/cni/net.d/{name}"
    return path, parse_network(json.dumps(obj).encode(), path)


FLANNEL_LIST = {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [{"type": "flannel"}]}
OTHER_LIST = {"name": "other", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}


def test_a_valid_flannel_network_is_ok_and_returned() -> None:
    listing: ConfListing = Success(
        (parsed(FLANNEL_LIST, "10.conflist"), parsed(OTHER_LIST, "20.conflist"))
    )
    found, networks = conf_findings("/etc/cni/net.d", listing)
    assert [n.conf.name for n in networks] == ["cbr0"]
    assert len(found) == 1  # another network is not flannel's business
    assert found[0].ok
    assert found[0].subject == "/etc/cni/net.d/10.conflist"
    assert "needs flannel, bridge, host-local" in found[0].message
    assert "subnetFile /run/flannel/subnet.env, dataDir /var/lib/cni/flannel" in found[0].message


def test_a_broken_file_and_an_invalid_flannel_entry_are_problems() -> None:
    invalid = {**FLANNEL_LIST, "plugins": [{"type": "flannel", "delegate": {"ipam": {}}}]}
    broken = ("/etc/cni/net.d/00.conf", parse_network(b"{", "/etc/cni/net.d/00.conf"))
    listing: ConfListing = Success((broken, parsed(invalid, "10.conflist")))
    found, networks = conf_findings("/etc/cni/net.d", listing)
    assert networks == []
    assert [f.ok for f in found] == [False, False, False]
    assert found[0].message.startswith("is not valid JSON")  # the path is the subject, once
    assert found[1].message.startswith("flannel entry: delegate must not contain 'ipam'")
    assert found[2].subject == "/etc/cni/net.d"
    assert "no network configuration here has a plugin of type 'flannel'" in found[2].message


def test_an_unlistable_conf_dir_is_one_problem() -> None:
    listing: ConfListing = Failure(CniError(5, "/nope does not exist: no network is configured"))
    found, networks = conf_findings("/nope", listing)
    assert networks == []
    assert found == [Finding("conf", False, "/nope", "does not exist: no network is configured")]


# -- subnet.env ------------------------------------------------------------------------


def test_a_complete_subnet_env_reports_its_age_and_lease() -> None:
    finding = subnet_finding(SubnetFacts("/run/flannel/subnet.env", Success(LEASE), 185.0))
    assert finding.ok
    assert finding.line() == (
        "ok      subnet.env /run/flannel/subnet.env complete (age 3m): subnet 10.244.7.1/24,"
        " network 10.244.0.0/16, mtu 1450, ipmasq true"
    )


def test_an_old_subnet_env_is_not_a_problem_by_itself() -> None:
    assert subnet_finding(SubnetFacts("/s", Success(LEASE), 400 * 86400.0)).ok


@pytest.mark.parametrize(
    ("error", "age", "message"),
    [
        (
            CniError(11, "/s does not exist: flanneld is not running"),
            None,
            "does not exist: flanneld is not running",
        ),
        (
            CniError(11, "/s is incomplete, missing FLANNEL_MTU"),
            5.0,
            "is incomplete, missing FLANNEL_MTU (age 5s)",
        ),
        (
            CniError(6, "/s line 2: FLANNEL_MTU must be x"),
            5.0,
            "line 2: FLANNEL_MTU must be x (age 5s)",
        ),
    ],
)
def test_a_missing_incomplete_or_malformed_subnet_env_is_a_problem(
    error: CniError, age: float | None, message: str
) -> None:
    assert subnet_finding(SubnetFacts("/s", Failure(error), age)) == Finding(
        "subnet.env", False, "/s", message
    )


# -- plugins -------------------------------------------------------------------------------

NEEDS = (PluginNeed("cbr0", "0.3.1"), PluginNeed("v6", "1.1.0"))
NOT_FOUND = CniError(
    100,
    "delegate plugin 'flannel' not found in CNI_PATH /opt/cni/bin: install it there"
    " (Debian: containernetworking-plugins)",
)


def test_a_plugin_that_speaks_every_needed_version_is_ok() -> None:
    versions = ("0.3.1", "1.0.0", "1.1.0")
    finding = plugin_finding(PluginFacts("bridge", NEEDS, Success("/b/bridge"), Success(versions)))
    assert finding.ok
    assert finding.message == "/b/bridge supports 0.3.1, 1.0.0, 1.1.0 (uses: cbr0 0.3.1, v6 1.1.0)"


def test_a_plugin_missing_a_needed_version_names_network_and_version() -> None:
    versions = ("0.3.1", "1.0.0")
    finding = plugin_finding(PluginFacts("bridge", NEEDS, Success("/b/bridge"), Success(versions)))
    assert not finding.ok
    assert "network v6 uses 1.1.0" in finding.message
    assert "cbr0" not in finding.message


def test_a_missing_flannel_points_at_the_install_not_at_debian() -> None:
    finding = plugin_finding(PluginFacts("flannel", NEEDS, Failure(NOT_FOUND), None))
    assert not finding.ok
    assert finding.message.startswith("not found in CNI_PATH /opt/cni/bin")
    assert "Debian" not in finding.message
    assert "command -v flannel" in finding.message


def test_a_missing_delegate_keeps_the_debian_hint() -> None:
    error = CniError(100, NOT_FOUND.msg.replace("'flannel'", "'bridge'"))
    finding = plugin_finding(PluginFacts("bridge", NEEDS, Failure(error), None))
    assert not finding.ok
    assert finding.message.endswith("(Debian: containernetworking-plugins)")


@pytest.mark.parametrize(
    ("versions", "words"),
    [
        (Failure(CniError(101, "delegate 'x' VERSION: was killed by SIGKILL")), "VERSION failed"),
        (Success(()), "lists no supported versions"),
        (None, "VERSION was not asked"),
    ],
)
def test_a_plugin_whose_version_answer_is_unusable_is_a_problem(
    versions: Result[tuple[str, ...], CniError] | None, words: str
) -> None:
    finding = plugin_finding(PluginFacts("x", NEEDS, Success("/b/x"), versions))
    assert not finding.ok
    assert words in finding.message


# -- dataDir -------------------------------------------------------------------------------------

WHERE = (Target("cbr0", "/s", "/d"),)
LEASES: dict[str, Result[Lease, CniError]] = {"/s": Success(LEASE)}


def test_a_healthy_data_dir_gives_one_ok_line_and_one_per_record() -> None:
    facts = DataDirFacts("/d", DIR, (record(), record("go", netns=None, exists=None)))
    found = data_dir_findings(facts, WHERE, LEASES)
    assert all(f.ok for f in found)
    assert found[0] == Finding("dataDir", True, "/d", "owned by root, mode 0700, 2 record(s)")
    assert found[1].line() == (
        "ok      record c1:eth0 bridge 10.244.7.0/24, namespace /var/run/netns/pod exists (age 3m)"
    )
    assert found[2].message.endswith("namespace unknown (none recorded) (age 3m)")


def test_a_missing_data_dir_is_fine_and_an_unreachable_one_is_not() -> None:
    assert data_dir_findings(DataDirFacts("/d", None), WHERE, LEASES)[0].ok
    unreachable = DataDirFacts("/d", None, (), "cannot look at /d: Permission denied")
    assert problems(data_dir_findings(unreachable, WHERE, LEASES)) == [
        "cannot look at /d: Permission denied"
    ]


@pytest.mark.parametrize(
    ("info", "error", "words"),
    [
        (FileInfo(SYMLINK, 0o777, 0, 1.0), "refused", ["is a symlink"]),
        (FileInfo(REGULAR, 0o600, 0, 1.0), "not a dir", ["is a file, not a directory"]),
        (FileInfo(DIRECTORY, 0o700, 1000, 1.0), None, ["owned by uid 1000, not root"]),
        (FileInfo(DIRECTORY, 0o750, 0, 1.0), None, ["has mode 0750, not 0700"]),
        (
            FileInfo(DIRECTORY, 0o755, 7, 1.0),
            "cannot list",
            ["owned by uid 7", "has mode 0755", "cannot list"],
        ),
    ],
)
def test_data_dir_problems(info: FileInfo, error: str | None, words: list[str]) -> None:
    found = problems(data_dir_findings(DataDirFacts("/d", info, (), error), WHERE, LEASES))
    assert len(found) == len(words)
    for message, word in zip(found, words, strict=True):
        assert word in message


def test_records_are_judged_by_their_own_network_s_lease() -> None:
    where = (Target("cbr0", "/s", "/d"), Target("moved", "/m", "/d"))
    leases: dict[str, Result[Lease, CniError]] = {"/s": Success(LEASE), "/m": Success(MOVED)}
    theirs = record("c2:eth0", content=Success({**RECORD, "name": "moved"}))
    found = data_dir_findings(DataDirFacts("/d", DIR, (record(), theirs)), where, leases)
    assert [(f.subject, f.ok) for f in found[1:]] == [("c1:eth0", True), ("c2:eth0", False)]
    assert "10.244.7.0/24 is no longer this node's" in found[2].message


# -- records ------------------------------------------------------------------------------------


def test_a_gone_namespace_says_del_or_gc_will_release_it() -> None:
    found = entry_findings("/d", record(exists=False), LEASE)
    assert [f.line() for f in found] == [
        (
            "problem record c1:eth0 namespace /var/run/netns/pod no longer exists:"
            " DEL or GC will release it"
        )
    ]


def test_a_drifted_record_is_a_problem_and_without_a_lease_drift_is_not_judged() -> None:
    found = entry_findings("/d", record(), MOVED)
    assert len(found) == 1
    assert not found[0].ok
    assert (
        "10.244.7.0/24 is no longer this node's flannel subnet (10.244.9.0/24)" in found[0].message
    )
    assert [f.ok for f in entry_findings("/d", record(), None)] == [True]


def test_gone_and_drifted_give_one_line_each() -> None:
    found = entry_findings("/d", record(exists=False), MOVED)
    assert [f.ok for f in found] == [False, False]
    assert "no longer exists" in found[0].message
    assert "no longer this node's" in found[1].message


def test_an_unreadable_record_is_a_problem_that_del_survives() -> None:
    broken = Failure(CniError(6, "state record 'c1:eth0' is not valid JSON: x"))
    found = entry_findings("/d", record(content=broken, netns=None, exists=None), LEASE)
    assert problems(found) == [
        (
            "cannot be read (state record 'c1:eth0' is not valid JSON: x):"
            " DEL replays a fresh rendering instead"
        )
    ]


@pytest.mark.parametrize(
    ("info", "words"),
    [
        (FileInfo(REGULAR, 0o644, 0, 1.0), ["has mode 0644, not 0600"]),
        (FileInfo(REGULAR, 0o600, 1000, 1.0), ["is owned by uid 1000, not root"]),
        (
            FileInfo(SYMLINK, 0o777, 0, 1.0),
            ["is a symlink: the plugin never follows one; remove it"],
        ),
        (FileInfo(DIRECTORY, 0o700, 0, 1.0), ["is a directory, not a record file; remove it"]),
        (FileInfo(OTHER, 0o600, 0, 1.0), ["is a special file, not a record file; remove it"]),
    ],
)
def test_record_file_problems(info: FileInfo, words: list[str]) -> None:
    assert problems(entry_findings("/d", record(info=info), LEASE)) == words


def test_temporary_files_are_a_problem_only_once_abandoned() -> None:
    young = EntryFacts(".tmp-00ff", FileInfo(REGULAR, 0o600, 0, 1.0))
    old = EntryFacts(".tmp-00ff", FileInfo(REGULAR, 0o600, 0, TEMP_ABANDONED_AFTER_SECONDS + 1))
    assert entry_findings("/d", young, LEASE) == []
    assert "interrupted ADD" in problems(entry_findings("/d", old, LEASE))[0]


def test_a_stranger_in_data_dir_is_a_problem() -> None:
    stranger = EntryFacts("lost found", FileInfo(REGULAR, 0o644, 0, 1.0))
    assert problems(entry_findings("/d", stranger, LEASE)) == [
        "is not a state record, yet it is in /d"
    ]


def test_the_report_is_ok_only_when_every_check_is() -> None:
    fine = Finding("conf", True, "a", "b")
    bad = Finding("record", False, "c", "d")
    assert report([fine]) == {
        "ok": True,
        "checks": [{"check": "conf", "ok": True, "subject": "a", "message": "b"}],
    }
    assert report([fine, bad])["ok"] is False
    assert report([])["ok"] is True
