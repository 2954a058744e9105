"""shell.store.StateDir: atomic records, modes, and nothing touched outside dataDir (spec §5)."""

from __future__ import annotations

import ipaddress
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from core.errors import Code
from core.jsonvalue import encode
from core.netconf import parse_netconf
from core.records import (
    NETNS_ATTRIBUTE,
    TEMP_PREFIX,
    decode_record,
    legacy_record_name,
    record_name,
)
from core.render import render_delegate
from core.subnet_env import parse_subnet_env
from shell.store import MAX_RECORD_BYTES, StateDir

RECORD = record_name("c0ffee", "eth0")
CONTENT = b'{"name":"cbr0","type":"bridge"}'


@contextmanager
def opened(path: Path, *, create: bool = True) -> Iterator[StateDir]:
    result = StateDir.open(str(path), create=create)
    store = result.unwrap()
    assert store is not None
    try:
        yield store
    finally:
        store.close()


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def error_code(result: Any) -> int:
    assert isinstance(result, Failure), result
    return int(result.failure().code)


# -- opening dataDir --------------------------------------------------------------


def test_open_creates_data_dir_with_mode_0700_even_with_umask_0(tmp_path: Path) -> None:
    path = tmp_path / "a" / "flannel"
    with umask(0), opened(path):
        pass
    assert path.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_open_missing_data_dir_without_create_is_none_and_creates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "absent"
    assert StateDir.open(str(path), create=False) == Success(None)
    assert not path.exists()


@pytest.mark.parametrize("create", [True, False])
def test_data_dir_that_is_a_symlink_is_refused(tmp_path: Path, create: bool) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "flannel"
    link.symlink_to(real)
    opened_dir = StateDir.open(str(link), create=create)
    assert error_code(opened_dir) == Code.IO_FAILURE
    assert "symlink" in opened_dir.failure().msg
    assert list(real.iterdir()) == []


@pytest.mark.parametrize("create", [True, False])
def test_data_dir_that_is_a_dangling_symlink_is_refused_and_nothing_is_created(
    tmp_path: Path, create: bool
) -> None:
    target = tmp_path / "nowhere" / "flannel"
    link = tmp_path / "flannel"
    link.symlink_to(target)
    assert error_code(StateDir.open(str(link), create=create)) == Code.IO_FAILURE
    assert not (tmp_path / "nowhere").exists()


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "flannel"
    path.write_bytes(b"not a directory")
    assert error_code(StateDir.open(str(path), create=True)) == Code.IO_FAILURE
    assert error_code(StateDir.open(str(path), create=False)) == Code.IO_FAILURE
    assert path.read_bytes() == b"not a directory"


# -- write, read, remove, names ------------------------------------------------------


def test_write_then_read_gives_back_the_same_bytes(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        assert store.write(RECORD, CONTENT) == Success(None)
        assert store.read(RECORD) == Success(CONTENT)
    assert (tmp_path / "d" / RECORD).read_bytes() == CONTENT


def test_write_keeps_attributes_beside_the_bare_content(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        store.write(RECORD, CONTENT, {NETNS_ATTRIBUTE: "/var/run/netns/pod-1"}).unwrap()
    path = tmp_path / "d" / RECORD
    assert path.read_bytes() == CONTENT
    assert os.getxattr(path, NETNS_ATTRIBUTE) == b"/var/run/netns/pod-1"


def test_write_replaces_an_existing_record(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        store.write(RECORD, b"old").unwrap()
        store.write(RECORD, CONTENT).unwrap()
        assert store.read(RECORD) == Success(CONTENT)
        assert store.names() == Success([RECORD])


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        for index in range(5):
            store.write(f"c{index}:eth0", CONTENT).unwrap()
        store.write("c0:eth0", b"again").unwrap()
    left = sorted(os.listdir(tmp_path / "d"))
    assert left == [f"c{index}:eth0" for index in range(5)]
    assert not any(name.startswith(TEMP_PREFIX) for name in left)


def test_record_file_has_mode_0600_even_with_umask_0(tmp_path: Path) -> None:
    with umask(0), opened(tmp_path / "d") as store:
        store.write(RECORD, CONTENT).unwrap()
    assert stat.S_IMODE((tmp_path / "d" / RECORD).stat().st_mode) == 0o600


def test_read_of_a_missing_record_is_success_none(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        assert store.read(RECORD) == Success(None)


def test_remove_deletes_the_record_and_a_missing_one_is_fine(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        store.write(RECORD, CONTENT).unwrap()
        assert store.remove(RECORD) == Success(None)
        assert store.read(RECORD) == Success(None)
        assert store.remove(RECORD) == Success(None)
    assert os.listdir(tmp_path / "d") == []


def test_names_lists_every_entry_sorted(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        assert store.names() == Success([])
        for name in ("b:eth0", "a:eth1", "legacy0", "a:eth0"):
            store.write(name, CONTENT).unwrap()
        assert store.names() == Success(["a:eth0", "a:eth1", "b:eth0", "legacy0"])


def test_record_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        (tmp_path / "d" / RECORD).write_bytes(b" " * (MAX_RECORD_BYTES + 1))
        assert error_code(store.read(RECORD)) == Code.IO_FAILURE


# -- symlinks and odd files in dataDir ---------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside dataDir that a planted symlink points at."""
    target = tmp_path / "outside" / "secret"
    target.parent.mkdir()
    target.write_bytes(b"must not be read, written or removed")
    return target


def test_symlinked_record_is_refused_and_its_target_is_not_read(
    tmp_path: Path, outside: Path
) -> None:
    with opened(tmp_path / "d") as store:
        (tmp_path / "d" / RECORD).symlink_to(outside)
        read = store.read(RECORD)
    assert error_code(read) == Code.IO_FAILURE
    assert "symlink" in read.failure().msg
    assert outside.read_bytes() not in read.failure().msg.encode()


def test_remove_of_a_symlinked_record_removes_the_link_only(tmp_path: Path, outside: Path) -> None:
    link = tmp_path / "d" / RECORD
    with opened(tmp_path / "d") as store:
        link.symlink_to(outside)
        assert store.remove(RECORD) == Success(None)
    assert not link.is_symlink()
    assert outside.read_bytes() == b"must not be read, written or removed"


def test_remove_of_a_symlink_to_a_directory_removes_the_link_only(tmp_path: Path) -> None:
    target = tmp_path / "outside-dir"
    target.mkdir()
    (target / "keep").write_bytes(b"x")
    link = tmp_path / "d" / RECORD
    with opened(tmp_path / "d") as store:
        link.symlink_to(target, target_is_directory=True)
        assert store.remove(RECORD) == Success(None)
    assert not link.is_symlink()
    assert (target / "keep").read_bytes() == b"x"


def test_write_over_a_symlinked_record_replaces_the_link_not_its_target(
    tmp_path: Path, outside: Path
) -> None:
    link = tmp_path / "d" / RECORD
    with opened(tmp_path / "d") as store:
        link.symlink_to(outside)
        assert store.write(RECORD, CONTENT) == Success(None)
    assert not link.is_symlink()
    assert link.read_bytes() == CONTENT
    assert outside.read_bytes() == b"must not be read, written or removed"


def test_record_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        (tmp_path / "d" / RECORD).mkdir()
        assert error_code(store.read(RECORD)) == Code.IO_FAILURE


def test_record_that_is_a_fifo_is_an_error_and_does_not_block(tmp_path: Path) -> None:
    with opened(tmp_path / "d") as store:
        os.mkfifo(tmp_path / "d" / RECORD)
        read = store.read(RECORD)  # no writer: a blocking open would hang here
    assert error_code(read) == Code.IO_FAILURE
    assert "not a regular file" in read.failure().msg


# -- properties ----------------------------------------------------------------------------

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
container_ids = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(ALNUM),
    st.text(alphabet=ALNUM + "_.-", max_size=40),
)
ifnames = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/:"),
    min_size=1,
    max_size=15,
).filter(lambda name: name not in (".", ".."))
attachments = st.tuples(container_ids, ifnames)

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(st.lists(attachments, min_size=2, max_size=6, unique=True))
def test_records_of_different_attachments_never_collide(
    tmp_path: Path, pairs: list[tuple[str, str]]
) -> None:
    files = {record_name(cid, ifname): encode([cid, ifname]) for cid, ifname in pairs}
    # Go-plugin records named after the container ID may sit beside them.
    legacy = {legacy_record_name(cid): encode([cid]) for cid, _ in pairs}
    assert len(files) == len(pairs)
    assert not set(files) & set(legacy)
    with opened(Path(tempfile.mkdtemp(dir=tmp_path)) / "d") as store:
        for name, data in {**files, **legacy}.items():
            store.write(name, data).unwrap()
        assert store.names() == Success(sorted({**files, **legacy}))
        for name, data in {**files, **legacy}.items():
            assert store.read(name) == Success(data)


def _subnet_env(v4: ipaddress.IPv4Interface, v6: ipaddress.IPv6Interface | None) -> bytes:
    lines = [
        f"FLANNEL_NETWORK={v4.network.supernet(new_prefix=max(v4.network.prefixlen - 8, 0))}",
        f"FLANNEL_SUBNET={v4}",
        "FLANNEL_MTU=1450",
        "FLANNEL_IPMASQ=false",
    ]
    if v6 is not None:
        lines += [f"FLANNEL_IPV6_NETWORK={v6.network}", f"FLANNEL_IPV6_SUBNET={v6}"]
    return "\n".join(lines).encode()


v4_interfaces = st.builds(
    lambda address, prefix: ipaddress.IPv4Interface(f"{address}/{prefix}"),
    st.ip_addresses(v=4),
    st.integers(min_value=8, max_value=30),
)
v6_interfaces = st.builds(
    lambda address, prefix: ipaddress.IPv6Interface(f"{address}/{prefix}"),
    st.ip_addresses(v=6),
    st.integers(min_value=48, max_value=120),
)


@st.composite
def flannel_inputs(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """A valid network configuration for ADD and a subnet.env for it."""
    delegate = draw(json_objects.map(lambda d: {k: v for k, v in d.items() if k != "ipam"}))
    delegate.pop("name", None)
    delegate["type"] = draw(st.sampled_from(["bridge", "ipvlan", "macvlan"]))
    ipam = {
        **draw(json_objects),
        "type": "host-local",
        "routes": [{"dst": "192.0.2.0/24", "gw": "10.244.7.1"}],
    }
    config: dict[str, Any] = {"name": "cbr0", "type": "flannel", "delegate": delegate, "ipam": ipam}
    version = draw(st.sampled_from(["0.3.1", "1.0.0", "1.1.0"]) | st.none())
    if version is not None:
        config["cniVersion"] = version
    runtime_config = draw(st.none() | json_objects)
    if runtime_config is not None:
        config["runtimeConfig"] = runtime_config
    subnet_env = _subnet_env(draw(v4_interfaces), draw(st.none() | v6_interfaces))
    return config, subnet_env


@PROPERTY
@given(attachment=attachments, inputs=flannel_inputs())
def test_rendering_written_and_read_back_decodes_to_itself(
    tmp_path: Path, attachment: tuple[str, str], inputs: tuple[dict[str, Any], bytes]
) -> None:
    config, subnet_env = inputs
    conf = parse_netconf(encode(config), "ADD").unwrap()
    lease = parse_subnet_env(subnet_env, "subnet.env").unwrap()
    rendered = render_delegate(conf, lease)

    name = record_name(*attachment)
    with opened(Path(tempfile.mkdtemp(dir=tmp_path)) / "d") as store:
        store.write(name, encode(rendered)).unwrap()
        stored = store.read(name).unwrap()
    assert stored is not None
    assert decode_record(stored, name) == Success(rendered)
