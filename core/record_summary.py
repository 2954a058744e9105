"""One stored attachment as an operator reads it: who, which delegate, which subnet.

``records`` lists these and ``doctor`` judges them; both name a record the
same way, and a record that cannot be read is still listed, with the reason,
because it is exactly the one an operator is looking for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from returns.result import Failure, Success

from core.display import columns, format_age
from core.drift import record_subnets
from core.facts import DataDirFacts, EntryFacts
from core.jsonvalue import JsonObject
from core.records import RecordName, parse_record_name

HEADER: Final = ("CONTAINER ID", "IFNAME", "NETWORK", "TYPE", "SUBNETS", "AGE", "NETNS")


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """A record's attachment, network, delegate type, subnets, age and netns.

    ``ifname`` is None for a Go-plugin record; ``netns`` None when unknown;
    ``error`` says why the record cannot be read (then type and subnets are unknown).
    """

    data_dir: str
    file: str
    container_id: str
    ifname: str | None
    network: str | None
    delegate_type: str | None
    subnets: tuple[str, ...]
    age: float
    netns: str | None
    error: str | None

    def to_object(self) -> JsonObject:
        """The ``--json`` form: one object per record, absent facts as null."""
        return {
            "containerID": self.container_id,
            "ifname": self.ifname,
            "network": self.network,
            "type": self.delegate_type,
            "subnets": list(self.subnets),
            "ageSeconds": int(max(self.age, 0.0)),
            "netns": self.netns,
            "dataDir": self.data_dir,
            "file": self.file,
            "error": self.error,
        }


def summarise(data_dir: str, name: RecordName, entry: EntryFacts) -> RecordSummary:
    """What one record says; total, whatever the record holds."""
    network: str | None = None
    delegate_type: str | None = None
    subnets: tuple[str, ...] = ()
    error: str | None = None
    match entry.content:
        case Success(record):
            network = _text(record.get("name"))
            delegate_type = _text(record.get("type"))
            subnets = tuple(str(subnet) for subnet in record_subnets(record))
        case Failure(problem):
            error = problem.msg
        case None:
            error = "not a regular file"
    return RecordSummary(
        data_dir=data_dir,
        file=name.file,
        container_id=name.container_id,
        ifname=name.ifname,
        network=network,
        delegate_type=delegate_type,
        subnets=subnets,
        age=entry.info.age,
        netns=entry.netns or None,
        error=error,
    )


def summaries(dirs: Sequence[DataDirFacts]) -> list[RecordSummary]:
    """Every record in every dataDir, by container ID, then interface, then dataDir.

    Entries whose names are not records (temporary files, strangers) are not
    attachments and are left out; ``doctor`` reports them.
    """
    found = []
    for facts in dirs:
        for entry in facts.entries:
            name = parse_record_name(entry.file)
            if name is not None:
                found.append(summarise(facts.path, name, entry))
    return sorted(found, key=lambda s: (s.container_id, s.ifname or "", s.data_dir))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def table(found: Sequence[RecordSummary]) -> list[str]:
    """The human listing: a Go record's interface is "-", an unrecorded netns "unknown".

    DATADIR appears only when records come from more than one dataDir, and
    PROBLEM only when some record cannot be read.
    """
    many_dirs = len({s.data_dir for s in found}) > 1
    any_error = any(s.error is not None for s in found)
    header = [*HEADER, *(["DATADIR"] if many_dirs else []), *(["PROBLEM"] if any_error else [])]
    rows = []
    for s in found:
        row = [
            s.container_id,
            s.ifname or "-",
            s.network or "-",
            s.delegate_type or "-",
            ",".join(s.subnets) or "-",
            format_age(s.age),
            s.netns or "unknown",
        ]
        if many_dirs:
            row.append(s.data_dir)
        if any_error:
            row.append(f"unreadable: {s.error}" if s.error is not None else "")
        rows.append(row)
    return columns(header, rows)
