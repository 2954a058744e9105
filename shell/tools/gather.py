"""Collecting facts from the node for :mod:`core.findings` and :mod:`core.record_summary`.

Read-only: records are read through :class:`shell.store.StateDir`, which
refuses symlinks, metadata comes from lstat and the record's extended
attribute (never following a link), and plugins are only asked VERSION.
"""

from __future__ import annotations

import io
import os
import stat
import time
from collections.abc import Mapping, Sequence
from typing import Final

from returns.result import Failure, Result, Success

from core.delegate_output import supported_versions
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
from core.records import NETNS_ATTRIBUTE, decode_record, parse_record_name
from core.versions import LATEST
from shell.delegate import Delegates, find_plugin
from shell.lease import read_lease
from shell.store import StateDir

DEFAULT_CNI_PATH: Final = "/opt/cni/bin"


def file_info(path: str) -> FileInfo | None:
    """lstat of ``path``; None when it does not exist. Other errors raise OSError."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        kind = SYMLINK
    elif stat.S_ISDIR(info.st_mode):
        kind = DIRECTORY
    elif stat.S_ISREG(info.st_mode):
        kind = REGULAR
    else:
        kind = OTHER
    return FileInfo(kind, stat.S_IMODE(info.st_mode), info.st_uid, time.time() - info.st_mtime)


def subnet_facts(path: str) -> SubnetFacts:
    """The lease in subnet.env (as ADD would read it) and the file's age."""
    try:
        age: float | None = time.time() - os.stat(path).st_mtime
    except OSError:
        age = None
    return SubnetFacts(path, read_lease(path), age)


def data_dir_facts(path: str) -> DataDirFacts:
    """dataDir and every entry in it; a problem opening it becomes ``error``."""
    try:
        info = file_info(path)
    except OSError as exc:
        return DataDirFacts(path, None, (), f"cannot look at {path}: {exc.strerror or exc}")
    if info is None:
        return DataDirFacts(path, None)
    match StateDir.open(path, create=False):
        case Failure(error):
            return DataDirFacts(path, info, (), error.msg)
        case Success(StateDir() as store):
            try:
                return _entries(store, info)
            finally:
                store.close()
    return DataDirFacts(path, None)  # removed between lstat and open


def _entries(store: StateDir, info: FileInfo) -> DataDirFacts:
    match store.names():
        case Failure(error):
            return DataDirFacts(store.path, info, (), error.msg)
        case Success(names):
            pass
    entries = []
    for name in names:
        entry = _entry(store, name)
        if entry is not None:
            entries.append(entry)
    return DataDirFacts(store.path, info, tuple(entries))


def _entry(store: StateDir, name: str) -> EntryFacts | None:
    """One entry's facts; None when it vanished while we looked (a DEL ran)."""
    full = os.path.join(store.path, name)
    try:
        info = file_info(full)
    except OSError:
        return None
    if info is None:
        return None
    if parse_record_name(name) is None:
        return EntryFacts(name, info)
    content: Result[bytes | None, CniError] = store.read(name)
    if content == Success(None):
        return None
    record = content.bind(lambda data: decode_record(data or b"", name))
    netns = _netns(full) if info.kind == REGULAR else None
    exists = os.path.exists(netns) if netns is not None else None
    return EntryFacts(name, info, record, netns, exists)


def _netns(path: str) -> str | None:
    """The netns path ADD kept beside the record; None for Go records and no-xattr file systems."""
    try:
        value = os.getxattr(path, NETNS_ATTRIBUTE, follow_symlinks=False)
    except OSError:
        return None
    text = value.decode("utf-8", "surrogateescape")
    return text or None


def cni_path(option: str | None, env: Mapping[str, str]) -> tuple[str, ...]:
    """``--cni-path``, else $CNI_PATH, else /opt/cni/bin, split as the runtime splits it."""
    text = option if option is not None else env.get("CNI_PATH") or DEFAULT_CNI_PATH
    return tuple(part for part in text.split(":") if part)


def plugin_facts(
    plugin_type: str,
    needs: Sequence[PluginNeed],
    path: tuple[str, ...],
    env: Mapping[str, str],
) -> PluginFacts:
    """Where the plugin is, and which versions its VERSION lists (as a runtime asks it)."""
    executable = find_plugin(plugin_type, path)
    versions = executable.bind(lambda _exe: _versions(plugin_type, path, env))
    return PluginFacts(
        plugin_type,
        tuple(needs),
        executable,
        versions if isinstance(executable, Success) else None,
    )


def _versions(
    plugin_type: str, path: tuple[str, ...], env: Mapping[str, str]
) -> Result[tuple[str, ...], CniError]:
    """VERSION as the plugin's STATUS asks it (the delegate's own executor).

    The environment is the caller's, as libcni passes the runtime's, without
    stray CNI_* variables; the plugin's stderr is not an operator's business
    unless VERSION fails, and then its tail is in the error's details.
    """
    clean = {k: v for k, v in env.items() if not k.startswith("CNI_")}
    delegates = Delegates(path, {**clean, "CNI_PATH": ":".join(path)}, io.StringIO())
    probe = {"cniVersion": LATEST, "type": plugin_type}
    return delegates.call(probe, "VERSION").map(supported_versions)
