"""``flannel-cni records``: dataDirs filled by the real ``flannel`` ADD, listed back.

Each test populates dataDir as a node does: ADD through the installed
plugin (stand-in delegates), a Go-plugin record as that plugin left it, and
junk where a record should be.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from core.records import NETNS_ATTRIBUTE
from tests.conftest import JsonObject, Node, RunPlugin, RunTool, ToolRun

POD_A = "/var/run/netns/cni-aaaa"
POD_B = "/var/run/netns/cni-bbbb"
GO_RECORD: JsonObject = {
    "cniVersion": "0.3.1",
    "name": "cbr0",
    "type": "bridge",
    "ipMasq": False,
    "mtu": 1450,
    "ipam": {"type": "host-local", "subnet": "10.244.3.0/24", "routes": []},
}


def add(run: RunPlugin, node: Node, container: str, ifname: str, netns: str) -> None:
    env = node.env("ADD", CNI_CONTAINERID=container, CNI_IFNAME=ifname, CNI_NETNS=netns)
    run(env, node.netconf("0.3.1")).result()


@pytest.fixture
def populated(node: Node, run_executable: RunPlugin) -> Node:
    """Three attachments of ours, a Go record and an unreadable record."""
    add(run_executable, node, "bbbb", "eth0", POD_B)
    add(run_executable, node, "aaaa", "eth1", POD_A)
    add(run_executable, node, "aaaa", "eth0", POD_A)
    go = node.data_dir / "gggg"
    go.write_text(json.dumps(GO_RECORD), encoding="utf-8")
    go.chmod(0o600)
    junk = node.data_dir / "cccc:eth0"
    junk.write_bytes(b"{ torn write")
    junk.chmod(0o600)
    return node


def listing(run: ToolRun) -> list[list[str]]:
    assert run.status == 0, run.stderr
    return [line.split() for line in run.lines()]


def test_records_lists_every_attachment_sorted_with_its_facts(
    populated: Node, run_tool: RunTool
) -> None:
    rows = listing(run_tool("records", "--data-dir", str(populated.data_dir)))
    assert rows[0] == [
        *("CONTAINER", "ID", "IFNAME", "NETWORK", "TYPE", "SUBNETS", "AGE", "NETNS", "PROBLEM")
    ]
    body = [row[:7] for row in rows[1:]]
    assert body == [
        ["aaaa", "eth0", "cbr0", "bridge", "10.244.7.0/24", "0s", POD_A],
        ["aaaa", "eth1", "cbr0", "bridge", "10.244.7.0/24", "0s", POD_A],
        ["bbbb", "eth0", "cbr0", "bridge", "10.244.7.0/24", "0s", POD_B],
        ["cccc", "eth0", "-", "-", "-", "0s", "unknown"],
        ["gggg", "-", "cbr0", "bridge", "10.244.3.0/24", "0s", "unknown"],
    ]
    assert " ".join(rows[4][7:]).startswith(
        "unreadable: state record 'cccc:eth0' is not valid JSON"
    )
    assert [len(row) for row in rows[1:]] == [7, 7, 7, len(rows[4]), 7]


def test_records_json_gives_one_object_per_record(populated: Node, run_tool: RunTool) -> None:
    listed: list[dict[str, Any]] = run_tool(
        "records", "--data-dir", str(populated.data_dir), "--json"
    ).json()
    assert [(r["containerID"], r["ifname"]) for r in listed] == [
        ("aaaa", "eth0"),
        ("aaaa", "eth1"),
        ("bbbb", "eth0"),
        ("cccc", "eth0"),
        ("gggg", None),
    ]
    first = listed[0]
    assert first == {
        "containerID": "aaaa",
        "ifname": "eth0",
        "network": "cbr0",
        "type": "bridge",
        "subnets": ["10.244.7.0/24"],
        "ageSeconds": first["ageSeconds"],
        "netns": POD_A,
        "dataDir": str(populated.data_dir),
        "file": "aaaa:eth0",
        "error": None,
    }
    assert 0 <= first["ageSeconds"] < 60
    assert listed[3]["error"].startswith("state record 'cccc:eth0' is not valid JSON")
    assert (listed[4]["netns"], listed[4]["subnets"]) == (None, ["10.244.3.0/24"])
    assert all(r["error"] is None for i, r in enumerate(listed) if i != 3)


def test_the_netns_comes_from_the_record_s_extended_attribute(
    populated: Node, run_tool: RunTool
) -> None:
    record = populated.data_dir / "bbbb:eth0"
    os.setxattr(record, NETNS_ATTRIBUTE, b"/proc/4242/ns/net")
    listed = run_tool("records", "--data-dir", str(populated.data_dir), "--json").json()
    assert [r["netns"] for r in listed if r["containerID"] == "bbbb"] == ["/proc/4242/ns/net"]


def test_an_old_record_shows_its_age(populated: Node, run_tool: RunTool) -> None:
    record = populated.data_dir / "bbbb:eth0"
    three_hours_ago = record.stat().st_mtime - 3 * 3600
    os.utime(record, (three_hours_ago, three_hours_ago))
    rows = listing(run_tool("records", "--data-dir", str(populated.data_dir)))
    assert [row[5] for row in rows if row[0] == "bbbb"] == ["3h"]


def test_del_removes_the_attachment_from_the_listing(
    populated: Node, run_tool: RunTool, run_executable: RunPlugin
) -> None:
    env = populated.env("DEL", CNI_CONTAINERID="aaaa", CNI_IFNAME="eth1", CNI_NETNS="")
    run_executable(env, populated.netconf("0.3.1")).silent_success()
    listed = run_tool("records", "--data-dir", str(populated.data_dir), "--json").json()
    assert ("aaaa", "eth1") not in [(r["containerID"], r["ifname"]) for r in listed]
    assert len(listed) == 4


def test_data_dir_defaults_to_the_flannel_entry_of_the_conf_dir(
    tmp_path: Path, populated: Node, run_tool: RunTool
) -> None:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    entry = {"type": "flannel", "dataDir": str(populated.data_dir)}
    listed = {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [entry]}
    (conf_dir / "10-flannel.conflist").write_text(json.dumps(listed), encoding="utf-8")
    shown = run_tool("records", "--conf-dir", str(conf_dir), "--json").json()
    assert len(shown) == 5
    assert {r["dataDir"] for r in shown} == {str(populated.data_dir)}


def test_a_missing_data_dir_has_no_records(tmp_path: Path, run_tool: RunTool) -> None:
    missing = str(tmp_path / "nowhere")
    table = run_tool("records", "--data-dir", missing)
    assert (table.status, table.stdout) == (0, "")
    assert table.stderr == f"flannel-cni records: dataDir {missing} does not exist: no records\n"
    as_json = run_tool("records", "--data-dir", missing, "--json")
    assert (as_json.status, as_json.json()) == (0, [])


def test_an_empty_data_dir_says_so(tmp_path: Path, run_tool: RunTool) -> None:
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    done = run_tool("records", "--data-dir", str(empty))
    assert (done.status, done.stdout) == (0, "")
    assert done.stderr == f"flannel-cni records: no records in {empty}\n"


def test_a_symlinked_data_dir_is_refused_in_one_line(
    tmp_path: Path, populated: Node, run_tool: RunTool
) -> None:
    link = tmp_path / "link"
    link.symlink_to(populated.data_dir)
    done = run_tool("records", "--data-dir", str(link))
    assert done.status == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "a symlink is refused" in done.stderr


def test_files_that_are_not_records_are_not_listed(populated: Node, run_tool: RunTool) -> None:
    (populated.data_dir / ".tmp-0123456789abcdef").write_bytes(b"{}")
    (populated.data_dir / "not:a:record").write_bytes(b"{}")
    listed = run_tool("records", "--data-dir", str(populated.data_dir), "--json").json()
    assert sorted(r["file"] for r in listed) == [
        "aaaa:eth0",
        "aaaa:eth1",
        "bbbb:eth0",
        "cccc:eth0",
        "gggg",
    ]
