"""The state store's records, as pure values (spec §5).

A record is the bare delegate configuration ADD executed, as JSON, so that a
downgrade to the Go plugin still reads it. It is named injectively after the
attachment: ``<container ID>:<ifname>``. Neither part can contain ":", and a
container ID cannot, so the name splits back unambiguously and never collides
with the Go plugin's records, which are named after the container ID alone.
"""

from typing import Final, NamedTuple

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.jsonvalue import JsonObject, decode_object
from core.names import ifname_problem, is_valid_id

SEPARATOR: Final = ":"
# The extended attribute that keeps the container's netns path beside a record,
# for operators' tools (the content stays the bare delegate configuration).
NETNS_ATTRIBUTE: Final = "user.flannel-cni.netns"
# dataDir and its records are the plugin's alone (spec §5).
DATA_DIR_MODE: Final = 0o700
RECORD_MODE: Final = 0o600
# A record is written and renamed in milliseconds; a temporary file this old was
# left by an interrupted ADD (GC removes it, doctor reports it).
TEMP_ABANDONED_AFTER_SECONDS: Final = 60.0
# Temporary files start with "."; no record name does (IDs start alphanumeric).
TEMP_PREFIX: Final = ".tmp-"


class RecordName(NamedTuple):
    """A file name in dataDir and the attachment it belongs to.

    ``ifname`` is None for a record written by the Go plugin.
    """

    file: str
    container_id: str
    ifname: str | None


def record_name(container_id: str, ifname: str) -> str:
    """The file name of this plugin's record for an attachment."""
    return f"{container_id}{SEPARATOR}{ifname}"


def legacy_record_name(container_id: str) -> str:
    """The file name the Go plugin used: the container ID alone."""
    return container_id


def parse_record_name(file: str) -> RecordName | None:
    """The attachment a file in dataDir belongs to, or None when it is not a record."""
    container_id, sep, ifname = file.partition(SEPARATOR)
    if not is_valid_id(container_id):
        return None
    if not sep:
        return RecordName(file, container_id, None)
    if ifname_problem(ifname) is not None:
        return None
    return RecordName(file, container_id, ifname)


def is_stale(name: RecordName, valid: frozenset[tuple[str, str]]) -> bool:
    """Whether GC should remove a record (a Go record matches on container ID)."""
    if name.ifname is not None:
        return (name.container_id, name.ifname) not in valid
    return all(cid != name.container_id for cid, _ in valid)


def decode_record(data: bytes, file: str) -> Result[JsonObject, CniError]:
    """A stored record back as the delegate configuration it holds."""
    return decode_object(data, f"state record {file!r}").bind(_check_record)


def _check_record(record: JsonObject) -> Result[JsonObject, CniError]:
    delegate_type = record.get("type")
    if not isinstance(delegate_type, str) or delegate_type == "" or "/" in delegate_type:
        return Failure(CniError(Code.DECODE_FAILURE, "state record has no usable delegate 'type'"))
    return Success(record)


def with_prev_result(record: JsonObject, prev_result: JsonObject | None) -> JsonObject:
    """The configuration that replays a record, with the runtime's prevResult attached.

    prevResult is never stored (spec §5); it is attached when CHECK or DEL replay.
    """
    if prev_result is None:
        return dict(record)
    return {**record, "prevResult": prev_result}
