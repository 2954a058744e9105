"""Hostile input: a sandboxed node, hypothesis strategies and the invariant checker.

Shared by ``campaign_hostile.py`` (the long campaign) and
``test_hostile_bounded.py`` (its bounded CI version).

A :class:`Sandbox` is a temporary directory standing in for the node's file
system: subnet.env files of every kind (valid, moved, incomplete, malformed,
binary, huge, a directory, missing), state directories (plain, reached
through ``..``, to be created with parents, a symlink, a regular file),
``CNI_PATH`` with the recording stand-in delegates, and decoys at the places
traversal would reach (``etc/passwd``, ``decoy/evil``, an executable that
records it was run). Every case is one invocation; the tree is snapshotted
before and after it.

A :class:`Case` carries the environment, stdin, and what the spec (not the
implementation) says must happen:

- ``expect``: the error codes allowed when the input must be refused before
  any delegate runs (the generator broke it on purpose, and knows at which
  stage: environment 4; stdin 6; cniVersion 1 or 7; fields 7; for ADD also
  subnet.env 5/6/11 and dataDir 5, delegate missing 100);
- ``succeed``: the input is valid and the stand-ins answer success, so the
  invocation must succeed.

:func:`violations` checks every case against the invariants: stdout is a
success result (nothing, or one JSON object) with exit 0, or exactly one CNI
error object with exit 1; no traceback; no file created, removed or
modified outside ``dataDir`` (its ancestors may be created); no program
outside ``CNI_PATH`` executed; nothing executed and nothing touched for
VERSION; nothing executed for an input refused with code 4, or for one the
case says must be refused; the expected codes and successes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import string
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from core.delegate_output import Outcome
from core.versions import SUPPORTED_VERSIONS
from shell.main import run
from tests import standin_plugin
from tests.conftest import SUBNET_ENV_DUAL, SUBNET_ENV_MOVED, SUBNET_ENV_V4, install_standin

JsonObject = dict[str, Any]

COMMANDS: Final = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "ADD": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_COMMAND", "CNI_PATH"),
    "STATUS": ("CNI_COMMAND", "CNI_PATH"),
    "VERSION": ("CNI_COMMAND",),
}
SINCE: Final = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}
DELEGATES: Final = ("bridge", "ipvlan", "macvlan", "ptp")
ERROR_KEYS: Final = frozenset({"cniVersion", "code", "msg", "details"})
TEN_MB: Final = 10 * 1000 * 1000

# subnet.env variants by file name, and what ADD must answer for each.
SUBNET_FILES: Final[Mapping[str, int | None]] = {
    "subnet.env": None,  # valid
    "dual.env": None,
    "moved.env": None,
    "incomplete.env": 11,
    "malformed.env": 6,
    "binary.env": 6,
    "huge.env": 6,
    "directory.env": 5,
    "missing.env": 11,
    "empty.env": 11,
}
# dataDir variants (relative to the sandbox root), and what ADD must answer.
DATA_DIRS: Final[Mapping[str, int | None]] = {
    "var/lib/cni/flannel": None,
    "var/lib/cni/../cni/flannel2": None,  # traversal that stays a plain directory
    "var/lib/alt/a/b": None,  # created with its parents
    "var/lib/cni/linked": 5,  # a symlink to decoy/: refused
    "var/lib/cni/a-file": 5,  # a regular file
}


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# ---------------------------------------------------------------- the sandbox

DECOY_PROGRAMS: Final = ("evil", "decoy-bridge")


def _decoy_program(path: Path, name: str) -> None:
    """A stand-in that records its runs under ``name``: it must never run."""
    install_standin(path.parent, path.name)
    path.write_text(path.read_text().replace(f" {path.name} ", f" {name} "))


class Entry(NamedTuple):
    kind: str  # "f", "d", "l", "o"
    size: int
    mtime_ns: int
    inode: int
    target: str


Snapshot = dict[str, Entry]


class Sandbox:
    """A temporary node; every path a case may name lives under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "opt" / "cni" / "bin"
        self.flannel_dir = root / "run" / "flannel"
        self.decoy = root / "decoy"
        self.log = root / "standin-log.jsonl"
        self.script = root / "standin-script.json"
        self.bin.mkdir(parents=True)
        for name in (*DELEGATES, "host-local"):
            install_standin(self.bin, name)
        self.flannel_dir.mkdir(parents=True)
        files = {
            "subnet.env": SUBNET_ENV_V4.encode(),
            "dual.env": SUBNET_ENV_DUAL.encode(),
            "moved.env": SUBNET_ENV_MOVED.encode(),
            "incomplete.env": b"FLANNEL_NETWORK=10.244.0.0/16\n",
            "malformed.env": SUBNET_ENV_V4.encode() + b"FLANNEL_MTU=many\n",
            "binary.env": bytes(range(256)) * 16,
            "huge.env": SUBNET_ENV_V4.encode() + b"# " + b"x" * (4 << 20) + b"\n",
            "empty.env": b"",
        }
        for name, data in files.items():
            (self.flannel_dir / name).write_bytes(data)
        (self.flannel_dir / "directory.env").mkdir()
        # Decoys where traversal would land; "evil" records that it ran.
        self.decoy.mkdir()
        (self.decoy / "keep").write_text("a decoy: must survive every case\n")
        _decoy_program(self.decoy / "evil", "evil")
        _decoy_program(self.decoy / "bridge", "decoy-bridge")  # CNI_PATH never names decoy/
        (root / "etc").mkdir()
        (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
        lib = root / "var" / "lib" / "cni"
        lib.mkdir(parents=True)
        (lib / "linked").symlink_to(self.decoy, target_is_directory=True)
        (lib / "a-file").write_text("not a directory\n")

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def standin_env(self) -> dict[str, str]:
        return {standin_plugin.LOG_VAR: str(self.log), standin_plugin.SCRIPT_VAR: str(self.script)}

    def log_lines(self) -> int:
        try:
            with open(self.log, "rb") as file:
                return sum(1 for _ in file)
        except FileNotFoundError:
            return 0

    def snapshot(self) -> Snapshot:
        """Every path under root but the stand-ins' log, without following symlinks."""
        found: Snapshot = {}
        pending = [("", str(self.root))]
        while pending:
            prefix, directory = pending.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    relative = prefix + entry.name
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        found[relative] = Entry("d", 0, 0, info.st_ino, "")
                        pending.append((relative + "/", entry.path))
                    elif stat.S_ISLNK(info.st_mode):
                        found[relative] = Entry("l", 0, 0, info.st_ino, os.readlink(entry.path))
                    elif relative != self.log.name:
                        kind = "f" if stat.S_ISREG(info.st_mode) else "o"
                        found[relative] = Entry(
                            kind, info.st_size, info.st_mtime_ns, info.st_ino, ""
                        )
        return found

    def clear_state(self) -> None:
        """Remove what cases may have created (state directories), keep the fixtures."""
        for relative in ("var/lib/cni/flannel", "var/lib/cni/flannel2", "var/lib/alt"):
            shutil.rmtree(self.path(relative), ignore_errors=True)


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One invocation and what the spec says must come of it."""

    kind: str
    env: dict[str, str]
    stdin: bytes
    expect: frozenset[int] | None = None  # refused before any delegate, with one of these
    succeed: bool = False
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        shown = self.stdin if len(self.stdin) <= 300 else self.stdin[:300] + b"..."
        return (
            f"kind={self.kind} expect={sorted(self.expect) if self.expect else None}"
            f" succeed={self.succeed} notes={list(self.notes)}\n  env={self.env}\n  stdin={shown!r}"
        )


def spec_valid_id(value: str) -> bool:
    return (
        value != ""
        and value[0] in string.ascii_letters + string.digits
        and all(ch in string.ascii_letters + string.digits + "_.-" for ch in value)
    )


# Values chosen to reach outside the sandbox or dataDir if ever used as paths.
TRAVERSAL_IDS: Final = (
    "../../../etc/passwd",
    "../decoy/keep",
    "..",
    ".",
    "/etc/passwd",
    "a/../../b",
    "x/y",
    ".hidden",
    "-flag",
    "a\\b",
    "a b",
    "c0ffee;rm -rf",
    "x" * 241,
    "é",
)
TRAVERSAL_IFNAMES: Final = (
    "../eth0",
    "..",
    ".",
    "a/b",
    "eth0:1",
    "eth 0",
    "eth\t0",
    "x" * 16,
    "日本語日本語",
    "/etc",
)
TRAVERSAL_TYPES: Final = (
    "../decoy/evil",
    "../../decoy/evil",
    "/bin/sh",
    "..",
    ".",
    "",
    "a/b",
    "flannel/../bridge",
)
TRAVERSAL_NAMES: Final = ("../../etc/passwd", "a/b", "..", ".x", "", "-x", "a b", "cbr0\n")
CONTAINER_IDS: Final = ("c0ffee0123456789", "pod-a", "pod-b.1", "Z_9")
IFNAMES: Final = ("eth0", "eth1", "net1")


class Draft:
    """A case under construction: its parts, and what each break did to it."""

    def __init__(
        self, command: str, env: dict[str, str], conf: JsonObject, sandbox: Sandbox
    ) -> None:
        self.command = command
        self.env = env
        self.conf = conf
        self.sandbox = sandbox
        self.raw: bytes | None = None  # stdin as bytes, when not the encoded conf
        self.broken_vars: set[str] = set()  # CNI variables made invalid, for this command
        self.stdin_broken = False
        self.version_codes: set[int] = set()
        self.broken_keys: set[str] = set()  # configuration keys made invalid
        self.no_delegates = False  # CNI_PATH names no directory
        self.duplicate: tuple[str, bool] | None = None  # key, bad value first
        self.notes: list[str] = []

    def late_codes(self) -> set[int]:
        """ADD and STATUS: the codes of a broken subnet.env, dataDir or delegate."""
        subnet = self.conf.get("subnetFile")
        data = self.conf.get("dataDir")
        delegate = self.conf.get("delegate")
        kind = delegate.get("type") if isinstance(delegate, dict) else None
        subnet_code = SUBNET_FILES.get(os.path.basename(str(subnet)), 11)
        data_code = next(
            (code for name, code in DATA_DIRS.items() if data == self.sandbox.path(name)), None
        )
        missing = self.no_delegates or kind == "absent-plugin"
        if self.command == "ADD":
            codes = {subnet_code, data_code, 100 if missing else None}
            return {code for code in codes if code is not None}
        if self.command == "STATUS" and (subnet_code is not None or missing):
            return {50}
        return set()

    def data_dir_usable(self) -> bool:
        data = self.conf.get("dataDir")
        return not any(data == self.sandbox.path(name) for name, code in DATA_DIRS.items() if code)


@st.composite
def structured_cases(draw: st.DrawFn, sandbox: Sandbox) -> Case:
    """A valid invocation, then a few deliberate breaks, each with its spec verdict."""
    command = draw(st.sampled_from(COMMANDS))
    since = version_key(SINCE.get(command, "0.1.0"))
    usable = tuple(v for v in SUPPORTED_VERSIONS if version_key(v) >= since)
    # Mostly a version the command exists in, so that cases get past the version check.
    version = draw(
        st.one_of(
            st.sampled_from(usable),
            st.sampled_from(usable),
            st.sampled_from((*SUPPORTED_VERSIONS, None)),
        )
    )
    subnet = draw(st.sampled_from(sorted(SUBNET_FILES)))
    data = draw(st.sampled_from(sorted(DATA_DIRS)))
    delegate_type = draw(st.sampled_from((*DELEGATES, None, "absent-plugin")))
    cid = st.one_of(
        st.sampled_from(CONTAINER_IDS), st.from_regex(r"[a-f0-9]{1,64}", fullmatch=True)
    )
    paths = (str(sandbox.bin), f"{sandbox.bin}:/nonexistent", f"{sandbox.root}/opt/cni/../cni/bin")
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": draw(cid),
        "CNI_NETNS": "/var/run/netns/cni-" + draw(st.sampled_from(("1", "2"))),
        "CNI_IFNAME": draw(st.sampled_from(IFNAMES)),
        "CNI_ARGS": draw(st.sampled_from(("", "K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=default"))),
        "CNI_PATH": draw(st.sampled_from(paths)),
        **sandbox.standin_env(),
    }
    if command in ("GC", "STATUS"):
        for name in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"):
            if draw(st.booleans()):
                del env[name]
    conf: JsonObject = {
        "name": draw(st.sampled_from(("cbr0", "net-2"))),
        "type": "flannel",
        "subnetFile": f"{sandbox.flannel_dir}/{subnet}",
        "dataDir": sandbox.path(data),
    }
    if version is not None:
        conf["cniVersion"] = version
    delegate: JsonObject = {"hairpinMode": True}
    if delegate_type is not None:
        delegate["type"] = delegate_type
    conf["delegate"] = delegate
    if draw(st.booleans()):
        conf["ipam"] = {"routes": [{"dst": "192.168.0.0/16"}]}
    if command in ("CHECK", "DEL") and draw(st.booleans()):
        conf["prevResult"] = standin_plugin.default_result({"cniVersion": version or "0.1.0"})
    if command == "GC":
        conf["cni.dev/valid-attachments"] = [
            {"containerID": cid, "ifname": "eth0"}
            for cid in draw(st.lists(st.sampled_from(CONTAINER_IDS), max_size=3))
        ]
    draft = Draft(command, env, conf, sandbox)
    if command in SINCE and version_key(version or "0.1.0") < version_key(SINCE[command]):
        draft.version_codes.add(1)
    breaks = draw(st.sampled_from((0, 0, 0, 1, 1, 1, 2, 3)))
    for mutate in draw(st.lists(st.sampled_from(MUTATIONS), min_size=breaks, max_size=breaks)):
        mutate(draw, draft)
    return finish(draft)


def _stdin_of(draft: Draft) -> bytes:
    if draft.raw is not None:
        return draft.raw
    if draft.duplicate is None:
        return json.dumps(draft.conf).encode()
    raw, broken = encode_with_duplicate(draft.conf, *draft.duplicate)
    if broken:
        draft.broken_keys.add(draft.duplicate[0])
    return raw


def finish(draft: Draft) -> Case:
    """The case, with the verdict of the earliest stage a break reached."""
    raw = _stdin_of(draft)
    expect: frozenset[int] | None = None
    succeed = False
    late = draft.late_codes()
    if draft.broken_vars:
        expect = frozenset({4})
    elif draft.command == "VERSION":
        if draft.stdin_broken and raw.strip() != b"":
            expect = frozenset({6})
        else:
            succeed = True
    elif draft.stdin_broken:
        expect = frozenset({6})
    elif draft.version_codes:
        expect = frozenset(draft.version_codes)
    elif draft.broken_keys:
        expect = frozenset({7})
    elif late:
        expect = frozenset(late)
    elif draft.command in ("ADD", "STATUS"):
        succeed = True
    elif draft.command == "DEL":
        succeed = draft.data_dir_usable() and not draft.no_delegates
    return Case("structured", draft.env, raw, expect, succeed, tuple(draft.notes))


# -- mutations: each breaks one thing and records the stage it breaks at


def _env_value(draw: st.DrawFn, draft: Draft, name: str, values: Sequence[str]) -> None:
    value = draw(st.sampled_from(values))
    draft.env[name] = value
    draft.notes.append(f"{name}={value!r}")
    if name in REQUIRED[draft.command]:
        draft.broken_vars.add(name)


def m_container_id(draw: st.DrawFn, draft: Draft) -> None:
    _env_value(draw, draft, "CNI_CONTAINERID", TRAVERSAL_IDS)


def m_ifname(draw: st.DrawFn, draft: Draft) -> None:
    _env_value(draw, draft, "CNI_IFNAME", TRAVERSAL_IFNAMES)


def m_command(draw: st.DrawFn, draft: Draft) -> None:
    value = draw(st.sampled_from(("add", "ADD ", "", "DELETE", "VERSION\n", "../ADD")))
    draft.env["CNI_COMMAND"] = value
    draft.notes.append(f"CNI_COMMAND={value!r}")
    draft.broken_vars.add("CNI_COMMAND")


def m_drop_variable(draw: st.DrawFn, draft: Draft) -> None:
    name = draw(st.sampled_from(REQUIRED[draft.command]))
    if draw(st.booleans()):
        draft.env.pop(name, None)
    else:
        draft.env[name] = ""
    draft.notes.append(f"no {name}")
    draft.broken_vars.add(name)


def m_cni_args(draw: st.DrawFn, draft: Draft) -> None:
    # Not KEY=VALUE pairs: refused (4) where CNI_ARGS belongs to an attachment (ADD,
    # CHECK, DEL); VERSION, STATUS and GC have none and ignore it.
    value = draw(st.sampled_from(("=x", "novalue", "K=V;junk", ";=;")))
    draft.env["CNI_ARGS"] = value
    draft.notes.append(f"CNI_ARGS={value!r}")
    if "CNI_CONTAINERID" in REQUIRED[draft.command]:
        draft.broken_vars.add("CNI_ARGS")


def m_cni_path(draw: st.DrawFn, draft: Draft) -> None:
    # Paths the runtime gives are its business; the decoys must still never run
    # (decoy/ holds "evil" and a "bridge"), so only traversal that stays in bin/.
    bin_dir = draft.sandbox.bin
    value = draw(
        st.sampled_from((f"{bin_dir}/../bin", f"/nonexistent:{bin_dir}", f"{bin_dir}::", ":"))
    )
    draft.env["CNI_PATH"] = value
    draft.notes.append(f"CNI_PATH={value!r}")
    draft.broken_vars.discard("CNI_PATH")  # set again, non-empty
    draft.no_delegates = value == ":"


def m_name(draw: st.DrawFn, draft: Draft) -> None:
    value: object = draw(st.one_of(st.sampled_from(TRAVERSAL_NAMES), st.sampled_from((5, None))))
    draft.conf["name"] = value
    draft.notes.append(f"name={value!r}")
    draft.broken_keys.add("name")


def m_own_type(draw: st.DrawFn, draft: Draft) -> None:
    value: object = draw(st.one_of(st.sampled_from(TRAVERSAL_TYPES), st.just(1)))
    draft.conf["type"] = value
    draft.notes.append(f"type={value!r}")
    draft.broken_keys.add("type")


def m_delegate_type(draw: st.DrawFn, draft: Draft) -> None:
    value: object = draw(st.one_of(st.sampled_from((*TRAVERSAL_TYPES, "flannel")), st.just([])))
    delegate = draft.conf.get("delegate")
    draft.conf["delegate"] = {**(delegate if isinstance(delegate, dict) else {}), "type": value}
    draft.notes.append(f"delegate.type={value!r}")
    draft.broken_keys.add("delegate")


def m_delegate_shape(draw: st.DrawFn, draft: Draft) -> None:
    value: object = draw(
        st.sampled_from(
            ("bridge", [], 0, {"name": "other"}, {"ipam": {}}, {"type": "bridge", "name": "x"})
        )
    )
    draft.conf["delegate"] = value
    draft.notes.append(f"delegate={value!r}")
    draft.broken_keys.add("delegate")


def m_ipam(draw: st.DrawFn, draft: Draft) -> None:
    value: object = draw(
        st.sampled_from(
            (
                "host-local",
                {"type": "../decoy/evil"},
                {"routes": "0.0.0.0/0"},
                {"routes": [{"dst": "../../etc"}]},
                {"routes": [{"dst": "10.0.0.0/8", "gw": "nope"}]},
                {"routes": [5]},
            )
        )
    )
    draft.conf["ipam"] = value
    draft.notes.append(f"ipam={value!r}")
    draft.broken_keys.add("ipam")


def m_paths(draw: st.DrawFn, draft: Draft) -> None:
    key = draw(st.sampled_from(("dataDir", "subnetFile")))
    value: object = draw(
        st.sampled_from(
            ("../../decoy", "decoy", "", "./x", 7, None, ["/"], draft.sandbox.path("x\x00/y"))
        )
    )
    draft.conf[key] = value
    draft.notes.append(f"{key}={value!r}")
    if value is None:  # null means the default, off the sandbox: use a ".." path instead
        root = draft.sandbox.root
        draft.conf[key] = f"{root}/../{root.name}/{key}-escape"
        draft.notes[-1] = f"{key}=..-escape"
        draft.broken_keys.discard(key)
        return
    draft.broken_keys.add(key)


def m_objects(draw: st.DrawFn, draft: Draft) -> None:
    key = draw(st.sampled_from(("runtimeConfig", "prevResult")))
    value: object = draw(st.sampled_from(("x", 1, [], True)))
    draft.conf[key] = value
    draft.notes.append(f"{key}={value!r}")
    draft.broken_keys.add(key)


def m_version(draw: st.DrawFn, draft: Draft) -> None:
    value: object = draw(st.sampled_from(("2.0.0", "", "1.0", "0.3.1 ", 1.0, None, ["1.0.0"])))
    draft.conf["cniVersion"] = value
    draft.notes.append(f"cniVersion={value!r}")
    draft.version_codes = {1} if isinstance(value, str) else {7}


def m_attachments(draw: st.DrawFn, draft: Draft) -> None:
    if draft.command != "GC":
        return
    value: object = draw(
        st.sampled_from(
            (
                None,
                "all",
                [{"containerID": "../../etc/passwd", "ifname": "eth0"}],
                [{"containerID": "pod-a", "ifname": "../x"}],
                [["pod-a", "eth0"]],
            )
        )
    )
    if value is None:
        draft.conf.pop("cni.dev/valid-attachments", None)
    else:
        draft.conf["cni.dev/valid-attachments"] = value
    draft.notes.append(f"valid-attachments={value!r}")
    draft.broken_keys.add("cni.dev/valid-attachments")


def m_duplicate_key(draw: st.DrawFn, draft: Draft) -> None:
    # Duplicate keys: the last one wins, as in Go's encoding/json (the runtime's parser).
    key = draw(st.sampled_from(sorted(DUPLICATE_BAD)))
    draft.duplicate = (key, draw(st.booleans()))
    draft.notes.append(f"duplicate {key}, {'bad' if draft.duplicate[1] else 'good'} first")


DUPLICATE_BAD: Final[Mapping[str, object]] = {
    "name": "../../etc/passwd",
    "delegate": {"type": "../decoy/evil"},
    "dataDir": "relative/dir",
    "type": "a/b",
}


def encode_with_duplicate(conf: JsonObject, key: str, bad_first: bool) -> tuple[bytes, bool]:
    """``conf`` as JSON with ``key`` twice, its bad value first or last; broken when last."""
    if key not in conf:
        return json.dumps(conf).encode(), False
    pair = [f"{json.dumps(key)}: {json.dumps(DUPLICATE_BAD[key])}"]
    pair.append(f"{json.dumps(key)}: {json.dumps(conf[key])}")
    if not bad_first:
        pair.reverse()
    rest = json.dumps({k: v for k, v in conf.items() if k != key})[1:-1]
    return ("{" + ", ".join([*pair, rest] if rest else pair) + "}").encode(), not bad_first


def m_stdin_bytes(draw: st.DrawFn, draft: Draft) -> None:
    raw = draw(st.sampled_from(BROKEN_STDIN))
    draft.raw = raw
    draft.notes.append(f"stdin={raw[:40]!r}")
    draft.stdin_broken = True


MUTATIONS: Final = (
    m_container_id,
    m_ifname,
    m_command,
    m_drop_variable,
    m_cni_args,
    m_cni_path,
    m_name,
    m_own_type,
    m_delegate_type,
    m_delegate_shape,
    m_ipam,
    m_paths,
    m_objects,
    m_version,
    m_attachments,
    m_duplicate_key,
    m_stdin_bytes,
)


def _nested(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


# stdin that is not one JSON object (spec: decode failure, 6), from the small to the hostile.
BROKEN_STDIN: Final = (
    b"",
    b"   \n",
    b"null",
    b"[]",
    b'"cbr0"',
    b"{",
    b'{"name": "cbr0",}',
    b'{"cniVersion": NaN}',
    b'{"cniVersion": "1.0.0", "mtu": Infinity}',
    b'{"cniVersion": "1.0.0", "mtu": -Infinity}',
    b'{"cniVersion": "1.0.0", "mtu": 1e400}',
    b'{"cniVersion": "1.0.0", "mtu": ' + b"9" * 5000 + b"}",
    b'{"name": "\xff\xfe"}',
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b'{"name": "cbr0"} {"name": "x"}',
    b'{"name": "cbr0"}\x00',
    _nested(65),
    _nested(100_000),
    b"[" * 1_000_000,
    b"\x00" * 1000,
    b"x" * TEN_MB,
    b'{"name": "' + b"\xc3" * TEN_MB + b'"}',
)


_SCALARS: Final = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from((*TRAVERSAL_IDS, *TRAVERSAL_TYPES, "flannel", "bridge", "1.0.0"))
)
_KEYS: Final = st.sampled_from(
    ("cniVersion", "name", "type", "delegate", "ipam", "dataDir", "subnetFile", "prevResult")
) | st.text(max_size=6)
# JSON objects of any shape, with the keys of a network configuration among others.
RAW_JSON: Final = st.dictionaries(
    _KEYS,
    _SCALARS | st.dictionaries(_KEYS, _SCALARS, max_size=3) | st.lists(_SCALARS, max_size=3),
    max_size=6,
).map(lambda value: json.dumps(value).encode())


@st.composite
def raw_cases(draw: st.DrawFn, sandbox: Sandbox) -> Case:
    """Unstructured: any bytes on stdin, any values in the CNI variables."""
    text = st.binary(max_size=40).filter(lambda b: b"\x00" not in b).map(os.fsdecode)
    env: dict[str, str] = {
        "CNI_COMMAND": draw(st.sampled_from((*COMMANDS, "")) if draw(st.booleans()) else text),
        **sandbox.standin_env(),
    }
    for name in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"):
        if draw(st.booleans()):
            env[name] = draw(text)
    if draw(st.booleans()):
        env["CNI_PATH"] = str(sandbox.bin)
    stdin = draw(st.one_of(st.binary(max_size=300), st.sampled_from(BROKEN_STDIN[:17]), RAW_JSON))
    command = env["CNI_COMMAND"]
    expect = frozenset({4}) if command not in COMMANDS else None
    return Case("raw", env, stdin, expect)


def cases(sandbox: Sandbox) -> st.SearchStrategy[Case]:
    """Three structured cases for one unstructured."""
    structured = structured_cases(sandbox)
    return st.one_of(structured, structured, structured, raw_cases(sandbox))


# ---------------------------------------------------------------- running and checking


class Ran(NamedTuple):
    status: int
    stdout: str
    stderr: str
    executed: tuple[str, ...]  # the programs the plugin executed


class Recorder:
    """An in-process runner: records what it is asked to execute, answers as the stand-ins."""

    def __init__(self) -> None:
        self.executed: list[str] = []

    def __call__(self, executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        self.executed.append(executable)
        reply = standin_plugin.respond(env.get("CNI_COMMAND", ""), standin_plugin.decode(stdin), {})
        return Outcome(reply.exit, reply.stdout, reply.stderr)


def run_in_process(case: Case) -> Ran:
    recorder = Recorder()
    out, err = io.StringIO(), io.StringIO()
    status = run(case.env, case.stdin, out, err, recorder)
    return Ran(status, out.getvalue(), err.getvalue(), tuple(recorder.executed))


def run_executable(executable: str, sandbox: Sandbox, case: Case) -> Ran:
    before = sandbox.log_lines()
    done = subprocess.run(
        [executable],
        input=case.stdin,
        env=case.env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    entries = standin_plugin.read_log(str(sandbox.log))[before:]
    return Ran(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        tuple(str(entry["plugin"]) for entry in entries),
    )


def data_dirs_of(stdin: bytes) -> list[str]:
    """Every top-level string ``dataDir`` in stdin (all of them when duplicated)."""
    found: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> JsonObject:
        found.extend(v for k, v in pairs if k == "dataDir" and isinstance(v, str))
        return dict(pairs)

    try:
        top = json.loads(stdin.decode("utf-8"), object_pairs_hook=lambda pairs: pairs)
    except (ValueError, RecursionError):
        return []
    if isinstance(top, list) and all(isinstance(p, tuple) for p in top):
        hook(top)
    return found


def allowed_change(sandbox: Sandbox, relative: str, roots: Sequence[str]) -> bool:
    """Whether a change at ``relative`` is inside a dataDir, or creates one's ancestor."""
    full = os.path.realpath(os.path.join(sandbox.root, relative))
    lexical = os.path.normpath(os.path.join(sandbox.root, relative))
    for root in roots:
        real_root = os.path.realpath(root)
        if full == real_root or full.startswith(real_root.rstrip("/") + "/"):
            return True
        if os.path.normpath(root).startswith(lexical + "/") or real_root.startswith(full + "/"):
            return True  # an ancestor directory os.makedirs created for dataDir
    return False


def check_output(case: Case, ran: Ran) -> list[str]:
    """stdout and exit status: a success result with 0, one CNI error object with 1."""
    problems: list[str] = []
    if "Traceback" in ran.stdout + ran.stderr:
        problems.append("a traceback was printed")
    if ran.status not in (0, 1):
        problems.append(f"exit status {ran.status}")
    command = case.env.get("CNI_COMMAND")
    text = ran.stdout
    if text == "":
        if ran.status != 0:
            problems.append("an error without an error object on stdout")
        elif command in ("ADD", "VERSION"):
            problems.append(f"{command} succeeded without a result")
        return problems
    value = _one_object(text)
    if isinstance(value, str):
        return [*problems, value]
    if ran.status == 0:
        if set(value) == ERROR_KEYS:
            problems.append("exit 0 with an error object")
        if command not in ("ADD", "VERSION"):
            problems.append(f"{command} printed a result")
        return problems
    return problems + _error_object_problems(value, text)


def _one_object(text: str) -> JsonObject | str:
    """stdout as one JSON object on one line, or what is wrong with it."""
    if not text.endswith("\n") or "\n" in text[:-1]:
        return f"stdout is not one line: {text[:200]!r}"
    try:
        value = json.loads(text)
    except ValueError:
        return f"stdout is not JSON: {text[:200]!r}"
    if not isinstance(value, dict):
        return f"stdout is not a JSON object: {text[:200]!r}"
    return value


def _error_object_problems(value: JsonObject, text: str) -> list[str]:
    if set(value) != ERROR_KEYS:
        return [f"error object keys {sorted(value)}"]
    code = value["code"]
    if (
        isinstance(code, int)
        and not isinstance(code, bool)
        and isinstance(value["msg"], str)
        and value["msg"]
        and isinstance(value["details"], str)
        and value["cniVersion"] in SUPPORTED_VERSIONS
    ):
        return []
    return [f"malformed error object {text[:300]!r}"]


def error_code(ran: Ran) -> int | None:
    if ran.status == 0:
        return None
    try:
        value = json.loads(ran.stdout)
    except ValueError:
        return -1
    code = value.get("code") if isinstance(value, dict) else None
    return code if isinstance(code, int) else -1


def violations(
    sandbox: Sandbox, case: Case, ran: Ran, before: Snapshot, after: Snapshot
) -> list[str]:
    """Every invariant ``ran`` breaks; empty when it keeps them all."""
    problems = check_output(case, ran)
    code = error_code(ran)
    command = case.env.get("CNI_COMMAND")
    real_bin = os.path.realpath(sandbox.bin)
    for program in ran.executed:  # paths in-process, plugin names from the executable's log
        outside = "/" in program and os.path.realpath(os.path.dirname(program)) != real_bin
        if outside or program in DECOY_PROGRAMS:
            problems.append(f"executed {program}, which is not a delegate in CNI_PATH")
    if ran.executed and (command == "VERSION" or code == 4):
        problems.append(f"executed {list(ran.executed)} for a refused environment or VERSION")
    if case.expect is not None:
        if code not in case.expect:
            problems.append(f"code {code}, the spec says one of {sorted(case.expect)}")
        if ran.executed:
            problems.append(f"executed {list(ran.executed)} for input refused before rendering")
    if case.succeed and ran.status != 0:
        problems.append(f"valid input failed: {ran.stdout.strip()[:300]}")
    roots = [] if command == "VERSION" else data_dirs_of(case.stdin)
    changed = sorted(
        set(before.keys() ^ after.keys())
        | {
            p
            for p in before.keys() & after.keys()
            if before[p] != after[p] and before[p].kind != "d"
        }
    )
    for path in changed:
        if not allowed_change(sandbox, path, roots):
            what = "created" if path in after and path not in before else "removed or changed"
            problems.append(f"{path} {what} outside dataDir {roots}")
    return problems


@dataclass
class Tally:
    """The figures of a campaign."""

    cases: int = 0
    successes: int = 0
    codes: dict[int, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    expected_refusals: int = 0
    expected_successes: int = 0
    violations: list[tuple[Case, list[str]]] = field(default_factory=list)
    violation_count: int = 0
    seconds: float = 0.0

    def add(self, case: Case, ran: Ran, problems: list[str]) -> None:
        self.cases += 1
        self.kinds[case.kind] = self.kinds.get(case.kind, 0) + 1
        code = error_code(ran)
        if code is None:
            self.successes += 1
        else:
            self.codes[code] = self.codes.get(code, 0) + 1
        self.expected_refusals += case.expect is not None
        self.expected_successes += case.succeed
        if problems:
            self.violation_count += 1
            if len(self.violations) < 20:
                self.violations.append((case, problems))

    def table(self, title: str) -> str:
        errors = ", ".join(f"{code}: {n}" for code, n in sorted(self.codes.items()))
        rows = [
            ("cases", f"{self.cases}"),
            ("successes", f"{self.successes}"),
            ("errors by code", errors or "none"),
            (
                "cases with a spec verdict",
                f"{self.expected_refusals} refusals, {self.expected_successes} successes",
            ),
            ("invariant violations", f"{self.violation_count}"),
            ("time", f"{self.seconds:.1f} s ({self.cases / max(self.seconds, 1e-9):.0f} cases/s)"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [title, "-" * len(title)]
        lines += [f"{name:<{width}}  {value}" for name, value in rows]
        return "\n".join(lines)


def each_case(sandbox: Sandbox, case: Case, runner: str | None) -> tuple[Ran, list[str]]:
    """Run one case (in-process when ``runner`` is None) and check it."""
    before = sandbox.snapshot()
    ran = run_in_process(case) if runner is None else run_executable(runner, sandbox, case)
    after = sandbox.snapshot()
    return ran, violations(sandbox, case, ran, before, after)


def iter_violations(tally: Tally) -> Iterator[str]:
    for case, problems in tally.violations:
        yield case.describe() + "\n  -> " + "\n  -> ".join(problems)


def run_cases(
    sandbox: Sandbox,
    count: int,
    executable: str | None,
    rng_seed: int = 20240601,
    progress: bool = False,
) -> Tally:
    """``count`` cases from a fixed seed, each run and checked; what they gave."""
    tally = Tally()

    @seed(rng_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(sandbox))
    def one(case: Case) -> None:
        ran, problems = each_case(sandbox, case, executable)
        tally.add(case, ran, problems)
        if tally.cases % 500 == 0:
            sandbox.clear_state()  # records pile up under random IDs; GC sees a fresh node
        if progress and tally.cases % 5000 == 0:
            print(f"  {tally.cases} cases, {tally.violation_count} violations", flush=True)

    one()
    return tally
