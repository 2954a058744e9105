"""The state directory under hostile conditions, with the real bridge and host-local.

dataDir full (a tiny tmpfs, out of blocks or out of inodes), read-only (a
read-only bind mount), replaced by a symlink; a record replaced by a
symlink, a FIFO or a directory; records empty, truncated, garbage or of the
wrong JSON type. Each gives a clear CNI error, or a DEL that succeeds best
effort (a fresh rendering releases what ADD took) and removes the record,
never following a symlink and never deleting anything but the record's name.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.faults import NETWORK, Attachment, JsonObject, Rig, RigError, requirements, rig_in

IO_FAILURE = 5
DECODE_FAILURE = 6


class Mounts:
    """Mounts made by a test; all unmounted in teardown, even when the test failed."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def _mount(self, target: Path, *args: str) -> None:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
        self.made.append(target)

    def tmpfs(self, target: Path, options: str) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        self._mount(target, "-t", "tmpfs", "-o", options, "tmpfs")
        return target

    def read_only(self, target: Path) -> Path:
        """``target`` bind-mounted on itself, read-only."""
        self._mount(target, "--bind", str(target))
        self.remount(target, "ro")
        return target

    @staticmethod
    def remount(target: Path, mode: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,bind,{mode}", str(target)], check=True, capture_output=True
        )

    def unmount_all(self) -> None:
        for target in reversed(self.made):
            done = subprocess.run(["umount", str(target)], check=False, capture_output=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
        self.made.clear()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    try:
        requirements()
    except RigError as exc:
        pytest.fail(str(exc))
    with rig_in(tmp_path, "sd") as made:
        yield made


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    made = Mounts()
    try:
        yield made
    finally:
        made.unmount_all()


def use_data_dir(rig: Rig, path: Path) -> JsonObject:
    """Point the rig's configuration and its leak checks at ``path``."""
    rig.node.data_dir = path
    return rig.config(dataDir=str(path))


def fill(directory: Path, exhaust: str) -> None:
    """Exhaust the file system of ``directory``: its blocks (one growing file) or its
    inodes (empty files), until it refuses with ENOSPC."""
    for index in range(100_000):
        try:
            with (directory / f"ballast{index}").open("wb") as file:
                while exhaust == "blocks":
                    file.write(b"\0" * 4096)
                    file.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            return
    raise AssertionError(f"{directory} never filled up")


def assert_nothing_taken(rig: Rig, att: Attachment) -> None:
    assert rig.node.reservations(NETWORK) == []
    assert rig.node.veths() == []
    assert att.ifname not in att.pod.links()


def add(rig: Rig, att: Attachment, config: JsonObject) -> JsonObject:
    run = rig.invoke("ADD", att, config)
    assert run.status == 0, run.stdout + run.stderr
    assert rig.added(run, att) == []
    assert run.answer is not None
    return run.answer


# -- dataDir full ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "exhausted"),
    [("size=64k,nr_inodes=1000", "blocks"), ("size=4m,nr_inodes=16", "inodes")],
)
def test_full_data_dir_fails_add_with_enospc_and_leaves_nothing(
    rig: Rig, mounts: Mounts, tmp_path: Path, options: str, exhausted: str
) -> None:
    small = mounts.tmpfs(tmp_path / "small", options + ",mode=0700")
    data_dir = small / "flannel"
    data_dir.mkdir(mode=0o700)
    fill(small, exhausted)
    free = os.statvfs(small)
    assert (free.f_bavail if exhausted == "blocks" else free.f_ffree) == 0
    config = use_data_dir(rig, data_dir)
    with rig.attachment() as att:
        run = rig.invoke("ADD", att, config)

        assert run.status == 1, f"{exhausted}: {run.stdout}"
        assert run.code == IO_FAILURE
        assert "No space left on device" in run.msg
        assert str(data_dir) in run.msg
        assert not run.traceback
        assert os.listdir(data_dir) == [], "no record and no temporary file"
        assert_nothing_taken(rig, att)
        # The runtime's DEL after the failed ADD succeeds on the full file system.
        assert rig.invoke("DEL", att, config).status == 0
        assert rig.leaks(att) == []


def test_del_succeeds_when_data_dir_filled_up_after_add(
    rig: Rig, mounts: Mounts, tmp_path: Path
) -> None:
    small = mounts.tmpfs(tmp_path / "small", "size=256k,mode=0700")
    config = use_data_dir(rig, small / "flannel")
    with rig.attachment() as att:
        add(rig, att, config)
        fill(small, "blocks")
        again = rig.invoke("ADD", att, config)
        assert again.code == IO_FAILURE, "the file system is full"
        assert "No space left on device" in again.msg

        run = rig.invoke("DEL", att, config)

        assert run.status == 0, run.stdout
        assert rig.records() == []
        assert rig.leaks(att) == []


# -- dataDir read-only --------------------------------------------------------------------------


def test_read_only_data_dir_fails_add_with_erofs_and_leaves_nothing(
    rig: Rig, mounts: Mounts, tmp_path: Path
) -> None:
    data_dir = tmp_path / "ro" / "flannel"
    data_dir.mkdir(parents=True, mode=0o700)
    mounts.read_only(tmp_path / "ro")
    config = use_data_dir(rig, data_dir)
    with rig.attachment() as att:
        run = rig.invoke("ADD", att, config)

        assert run.status == 1
        assert run.code == IO_FAILURE
        assert "Read-only file system" in run.msg
        assert str(data_dir) in run.msg
        assert os.listdir(data_dir) == []
        assert_nothing_taken(rig, att)
        assert rig.invoke("DEL", att, config).status == 0


def test_read_only_missing_data_dir_fails_add_naming_it(
    rig: Rig, mounts: Mounts, tmp_path: Path
) -> None:
    (tmp_path / "ro").mkdir()
    mounts.read_only(tmp_path / "ro")
    data_dir = tmp_path / "ro" / "flannel"
    config = use_data_dir(rig, data_dir)
    with rig.attachment() as att:
        run = rig.invoke("ADD", att, config)

        assert run.code == IO_FAILURE
        assert "Read-only file system" in run.msg
        assert str(data_dir) in run.msg
        assert not data_dir.exists()
        assert_nothing_taken(rig, att)
        # Nothing stored, nothing to release: DEL succeeds.
        assert rig.invoke("DEL", att, config).status == 0


def test_read_only_data_dir_keeps_the_record_of_a_del_until_it_can_go(
    rig: Rig, mounts: Mounts, tmp_path: Path
) -> None:
    data_dir = tmp_path / "ro" / "flannel"
    data_dir.mkdir(parents=True, mode=0o700)
    mount = tmp_path / "ro"
    mounts.read_only(mount)
    Mounts.remount(mount, "rw")
    config = use_data_dir(rig, data_dir)
    with rig.attachment() as att:
        add(rig, att, config)
        Mounts.remount(mount, "ro")

        run = rig.invoke("DEL", att, config)

        # The delegate released the address; the record could not go: a clear error 5,
        # and the record stays for the runtime's retry.
        assert run.code == IO_FAILURE
        assert "Read-only file system" in run.msg
        assert att.record in run.msg
        assert rig.records() == [att.record]
        assert rig.node.reservations(NETWORK) == []
        assert rig.node.veths() == []

        Mounts.remount(mount, "rw")
        assert rig.invoke("DEL", att, config).status == 0
        assert rig.leaks(att) == []


# -- dataDir replaced by a symlink ----------------------------------------------------------


@pytest.mark.parametrize("target_exists", [True, False], ids=["to-a-directory", "dangling"])
def test_symlinked_data_dir_fails_add_and_nothing_is_written_through_it(
    rig: Rig, tmp_path: Path, target_exists: bool
) -> None:
    target = tmp_path / "elsewhere"
    if target_exists:
        target.mkdir()
    link = tmp_path / "state-link"
    link.symlink_to(target)
    config = use_data_dir(rig, link)
    with rig.attachment() as att:
        run = rig.invoke("ADD", att, config)

        assert run.code == IO_FAILURE
        assert "symlink" in run.msg
        assert str(link) in run.msg
        assert link.is_symlink()
        if target_exists:
            assert os.listdir(target) == []
        else:
            assert not target.exists(), "ADD created the symlink's target"
        assert_nothing_taken(rig, att)


def test_data_dir_replaced_by_a_symlink_after_add_fails_del_and_check(
    rig: Rig, tmp_path: Path
) -> None:
    data_dir = tmp_path / "state"
    config = use_data_dir(rig, data_dir)
    with rig.attachment() as att:
        result = add(rig, att, config)
        aside = tmp_path / "state-aside"
        data_dir.rename(aside)
        data_dir.symlink_to(aside)

        deleted = rig.invoke("DEL", att, config)
        checked = rig.invoke("CHECK", att, {**config, "prevResult": result})

        for run in (deleted, checked):
            assert run.code == IO_FAILURE
            assert "symlink" in run.msg
        assert os.listdir(aside) == [att.record], "nothing was removed through the link"
        assert rig.node.reservations(NETWORK) != [], "the delegate was not called"

        data_dir.unlink()
        aside.rename(data_dir)
        assert rig.invoke("DEL", att, config).status == 0
        assert rig.leaks(att) == []


# -- a record replaced by a symlink, a FIFO, a directory ----------------------------------------


def _plant_symlink(rig: Rig, att: Attachment, tmp_path: Path, kind: str) -> Path:
    """Replace the record by a symlink; the target's (or its absence's) path."""
    record = rig.node.data_dir / att.record
    target = tmp_path / f"precious-{kind}"
    if kind == "copy-of-the-record":
        target.write_bytes(record.read_bytes())
    elif kind == "directory":
        target.mkdir()
        (target / "inside").write_text("keep me\n")
    elif kind == "other-file":
        target.write_text("not a record, and not to be deleted\n")
    record.unlink()
    record.symlink_to(target)
    return target


def _snapshot(target: Path) -> object:
    if target.is_dir():
        return sorted((p.name, p.read_bytes()) for p in target.iterdir())
    return target.read_bytes() if target.exists() else None


@pytest.mark.parametrize("kind", ["copy-of-the-record", "directory", "other-file", "dangling"])
def test_record_replaced_by_a_symlink_is_never_followed_nor_its_target_deleted(
    rig: Rig, tmp_path: Path, kind: str
) -> None:
    config = rig.config()
    with rig.attachment() as att:
        result = add(rig, att, config)
        target = _plant_symlink(rig, att, tmp_path, kind)
        before = _snapshot(target)

        checked = rig.invoke("CHECK", att, {**config, "prevResult": result})
        deleted = rig.invoke("DEL", att, config)

        assert checked.code == IO_FAILURE
        assert "symlink" in checked.msg
        assert att.record in checked.msg
        assert deleted.status == 0, deleted.stdout
        assert "symlink" in deleted.stderr
        assert _snapshot(target) == before, "the symlink's target changed"
        assert target.exists() == (kind != "dangling")
        assert not (rig.node.data_dir / att.record).is_symlink(), "the link itself goes"
        # The fresh rendering released what ADD took.
        assert rig.leaks(att) == []


def test_symlink_planted_before_add_is_replaced_not_written_through(
    rig: Rig, tmp_path: Path
) -> None:
    config = rig.config()
    rig.node.data_dir.mkdir(mode=0o700)
    with rig.attachment() as att:
        target = tmp_path / "precious"
        target.write_text("keep me\n")
        (rig.node.data_dir / att.record).symlink_to(target)

        add(rig, att, config)

        assert target.read_text() == "keep me\n"
        record = rig.node.data_dir / att.record
        assert not record.is_symlink()
        assert json.loads(record.read_text())["type"] == "bridge"
        assert rig.invoke("DEL", att, config).status == 0
        assert rig.leaks(att) == []
        assert target.read_text() == "keep me\n"


def test_gc_of_a_symlinked_stale_record_never_follows_it(rig: Rig, tmp_path: Path) -> None:
    """GC replays an unreadable stale record with a fresh rendering of the GC
    configuration (cniVersion 1.1.0), which Debian's delegates (1.0.0 at most)
    refuse: GC reports that, naming the record, keeps it, and never touches
    the link's target; the runtime's DEL then releases everything."""
    config = rig.config()
    with rig.attachment() as att:
        add(rig, att, config)
        target = _plant_symlink(rig, att, tmp_path, "copy-of-the-record")
        before = target.read_bytes()

        gc = rig.collect_garbage()

        assert gc.status == 1
        assert att.record in gc.answer_text()
        assert "incompatible CNI versions" in gc.answer_text()
        assert (rig.node.data_dir / att.record).is_symlink(), "kept: it was not released"
        assert target.read_bytes() == before
        assert rig.invoke("DEL", att, config).status == 0
        assert target.read_bytes() == before
        assert rig.leaks(att) == []


@pytest.mark.parametrize("kind", ["fifo", "empty-directory", "full-directory"])
def test_non_file_in_a_records_place_never_blocks_del(rig: Rig, kind: str) -> None:
    config = rig.config()
    with rig.attachment() as att:
        result = add(rig, att, config)
        record = rig.node.data_dir / att.record
        record.unlink()
        if kind == "fifo":
            os.mkfifo(record, 0o600)
        else:
            record.mkdir()
            if kind == "full-directory":
                (record / "someone-elses").write_text("keep me\n")

        checked = rig.invoke("CHECK", att, {**config, "prevResult": result}, timeout=20)
        deleted = rig.invoke("DEL", att, config, timeout=20)

        assert not checked.timed_out, "opening a FIFO blocked"
        assert not deleted.timed_out, "opening a FIFO blocked"
        assert checked.code == IO_FAILURE
        assert "not a regular file" in checked.msg or "directory" in checked.msg
        assert deleted.status == 0, deleted.stdout
        assert rig.node.reservations(NETWORK) == []
        assert rig.node.veths() == []
        if kind == "full-directory":
            # Never delete what is not the record: the directory and its file stay.
            assert (record / "someone-elses").read_text() == "keep me\n"
            (record / "someone-elses").unlink()
            record.rmdir()
        assert rig.leaks(att) == []


# -- records empty, truncated, garbage, of the wrong JSON type -----------------------------


CORRUPTIONS: dict[str, bytes | None] = {
    "empty": b"",
    "truncated": None,  # the first half of the real record
    "garbage": b"\x00\xff\xfe garbage \x1b[2J",
    "not-utf8-json": b'{"type": "bridge", "name": "\xff"}',
    "array": b"[]",
    "number": b"42",
    "string": b'"bridge"',
    "null": b"null",
    "object-without-type": b'{"name": "cbr0"}',
    "type-not-a-string": b'{"type": 5, "name": "cbr0"}',
    "type-with-a-path": b'{"type": "../../../bin/sh", "name": "cbr0"}',
    "too-large": b'{"type": "bridge", "pad": "' + b"x" * (1 << 20) + b'"}',
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_record_del_succeeds_with_a_fresh_rendering_and_check_says_why(
    rig: Rig, kind: str
) -> None:
    config = rig.config()
    with rig.attachment() as att:
        result = add(rig, att, config)
        record = rig.node.data_dir / att.record
        real = record.read_bytes()
        corrupt = CORRUPTIONS[kind]
        record.write_bytes(real[: len(real) // 2] if corrupt is None else corrupt)
        assert rig.node.reservations(NETWORK) != []

        checked = rig.invoke("CHECK", att, {**config, "prevResult": result})
        deleted = rig.invoke("DEL", att, config)

        assert checked.status == 1
        assert checked.code in (IO_FAILURE, DECODE_FAILURE), checked.stdout
        assert att.record in checked.msg, checked.msg
        assert not checked.traceback
        assert deleted.status == 0, deleted.stdout + deleted.stderr
        assert "fresh rendering" in deleted.stderr
        assert rig.records() == [], "the unreadable record was removed"
        # The fresh rendering reached host-local and bridge: all released.
        assert rig.leaks(att) == []
        # A second DEL is a no-op.
        assert rig.invoke("DEL", att, config).status == 0


def test_corrupt_record_del_without_subnet_env_keeps_it_and_says_try_again(rig: Rig) -> None:
    """No record to replay and no lease to render from: DEL cannot release, so it must not
    drop the record; the runtime retries once flanneld is back."""
    config = rig.config()
    with rig.attachment() as att:
        add(rig, att, config)
        (rig.node.data_dir / att.record).write_bytes(b"garbage")
        lease = rig.node.subnet_file.read_text()
        rig.node.subnet_file.unlink()
        try:
            run = rig.invoke("DEL", att, config)
        finally:
            rig.node.subnet_file.write_text(lease)

        assert run.status == 1
        assert run.code == 11
        assert rig.records() == [att.record]
        assert rig.node.reservations(NETWORK) != []
        assert rig.invoke("DEL", att, config).status == 0
        assert rig.leaks(att) == []
