"""What the operator's tools gather from the node, as plain values.

The shell collects these (stat, read, execute VERSION) and the core judges
them (:mod:`core.findings`, :mod:`core.record_summary`), so every verdict is
testable without a node, and the I/O side stays a list of look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from returns.result import Result

from core.errors import CniError
from core.jsonvalue import JsonObject
from core.subnet_env import Lease

# What lstat said an entry is.
DIRECTORY: Final = "directory"
REGULAR: Final = "file"
SYMLINK: Final = "symlink"
OTHER: Final = "special file"


@dataclass(frozen=True, slots=True)
class FileInfo:
    """An lstat of one path: its kind, permission bits, owner and age in seconds."""

    kind: str
    mode: int
    uid: int
    age: float


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """One entry of dataDir.

    ``content`` is the decoded record (None when the entry is not a regular
    record file); ``netns`` the path ADD kept in the record's extended
    attribute (None when there is none: a Go record, or no xattr support);
    ``netns_exists`` whether that path exists now.
    """

    file: str
    info: FileInfo
    content: Result[JsonObject, CniError] | None = None
    netns: str | None = None
    netns_exists: bool | None = None


@dataclass(frozen=True, slots=True)
class DataDirFacts:
    """dataDir itself (``info`` None when it does not exist) and its entries.

    ``error`` says why the entries could not be listed, when they could not.
    """

    path: str
    info: FileInfo | None
    entries: tuple[EntryFacts, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SubnetFacts:
    """subnet.env: the lease read from it (or why not) and its age, when it exists."""

    path: str
    lease: Result[Lease, CniError]
    age: float | None


@dataclass(frozen=True, slots=True)
class PluginNeed:
    """A network that needs a plugin, and the cniVersion it will speak to it."""

    network: str
    version: str


@dataclass(frozen=True, slots=True)
class PluginFacts:
    """One plugin type: where it was found (or why not) and what its VERSION listed.

    ``versions`` is None when the plugin was not found, so VERSION never ran.
    """

    plugin_type: str
    needs: tuple[PluginNeed, ...]
    executable: Result[str, CniError]
    versions: Result[tuple[str, ...], CniError] | None
