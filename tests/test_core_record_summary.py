"""A stored attachment as ``records`` lists it."""

from __future__ import annotations

from returns.result import Failure, Result, Success

from core.errors import CniError
from core.facts import REGULAR, DataDirFacts, EntryFacts, FileInfo
from core.record_summary import HEADER, summaries, summarise, table
from core.records import parse_record_name
from tests.strategies import JsonObject

RECORD: JsonObject = {
    "name": "cbr0",
    "type": "bridge",
    "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.7.0/24"}], [{"subnet": "fd00:10:244:7::/64"}]],
    },
}
GO_RECORD: JsonObject = {"name": "cbr0", "type": "bridge", "ipam": {"subnet": "10.244.3.0/24"}}
INFO = FileInfo(REGULAR, 0o600, 0, 190.0)
BROKEN = CniError(6, "state record 'b:eth0' is not valid JSON")


def entry(
    file: str, content: Result[JsonObject, CniError] | None, netns: str | None = None
) -> EntryFacts:
    return EntryFacts(file, INFO, content, netns, None if netns is None else True)


def test_a_record_summarises_to_its_attachment_type_and_subnets() -> None:
    name = parse_record_name("c1:eth1")
    assert name is not None
    summary = summarise("/var/d", name, entry("c1:eth1", Success(RECORD), "/var/run/netns/p"))
    assert summary.to_object() == {
        "containerID": "c1",
        "ifname": "eth1",
        "network": "cbr0",
        "type": "bridge",
        "subnets": ["10.244.7.0/24", "fd00:10:244:7::/64"],
        "ageSeconds": 190,
        "netns": "/var/run/netns/p",
        "dataDir": "/var/d",
        "file": "c1:eth1",
        "error": None,
    }


def test_unreadable_records_keep_their_attachment_and_say_why() -> None:
    name = parse_record_name("b:eth0")
    assert name is not None
    summary = summarise("/var/d", name, entry("b:eth0", Failure(BROKEN)))
    assert (summary.container_id, summary.ifname, summary.error) == ("b", "eth0", BROKEN.msg)
    assert summary.delegate_type is None
    assert summary.subnets == ()


def facts() -> DataDirFacts:
    return DataDirFacts(
        "/var/d",
        INFO,
        (
            entry("zz:eth0", Success(RECORD), "/var/run/netns/z"),
            entry(".tmp-0011", None),
            entry("b:eth0", Failure(BROKEN)),
            entry("aa", Success(GO_RECORD)),
            entry("not a record", None),
        ),
    )


def test_summaries_leave_out_non_records_and_sort_by_container_id() -> None:
    listed = summaries([facts()])
    assert [(s.container_id, s.ifname) for s in listed] == [
        ("aa", None),
        ("b", "eth0"),
        ("zz", "eth0"),
    ]


def test_the_table_marks_go_records_unknown_namespaces_and_problems() -> None:
    lines = table(summaries([facts()]))
    assert lines[0].split() == ["CONTAINER", "ID", *HEADER[1:], "PROBLEM"]
    go, broken, ours = (line.split() for line in lines[1:])
    assert go[:7] == ["aa", "-", "cbr0", "bridge", "10.244.3.0/24", "3m", "unknown"]
    assert broken[:7] == ["b", "eth0", "-", "-", "-", "3m", "unknown"]
    assert " ".join(broken[7:]) == f"unreadable: {BROKEN.msg}"
    assert ours == [
        "zz",
        "eth0",
        "cbr0",
        "bridge",
        "10.244.7.0/24,fd00:10:244:7::/64",
        "3m",
        "/var/run/netns/z",
    ]


def test_the_table_names_the_data_dir_only_when_there_are_several() -> None:
    one = DataDirFacts("/var/one", INFO, (entry("a:eth0", Success(RECORD)),))
    two = DataDirFacts("/var/two", INFO, (entry("a:eth1", Success(RECORD)),))
    assert "DATADIR" not in table(summaries([one]))[0]
    lines = table(summaries([one, two]))
    assert lines[0].split()[-1] == "DATADIR"
    assert lines[1].endswith("/var/one")
    assert lines[2].endswith("/var/two")
