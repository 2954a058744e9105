"""The state directory (spec §5): atomic records, nothing touched outside it.

Every operation goes through a descriptor of dataDir itself and uses bare
file names with O_NOFOLLOW, so no input and no symlink planted in the
directory can make the plugin read, write or remove a path outside it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Mapping
from typing import Final

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.records import DATA_DIR_MODE, RECORD_MODE, TEMP_PREFIX

MAX_RECORD_BYTES: Final = 1 << 20
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _io_error(what: str, exc: OSError) -> CniError:
    return CniError(Code.IO_FAILURE, f"{what}: {exc.strerror or exc}")


class StateDir:
    """An open dataDir. Use :meth:`open`; close with :meth:`close`."""

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str, *, create: bool) -> Result[StateDir | None, CniError]:
        """Open dataDir; None when it does not exist and ``create`` is false."""
        try:
            if create:
                os.makedirs(path, mode=DATA_DIR_MODE, exist_ok=True)
            return Success(cls(os.open(path, _DIR_FLAGS), path))
        except FileNotFoundError:
            if create:
                return Failure(CniError(Code.IO_FAILURE, f"cannot create dataDir {path}"))
            return Success(None)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
                return Failure(
                    CniError(
                        Code.IO_FAILURE,
                        f"dataDir {path} is not a directory (a symlink is refused):"
                        " point dataDir at a real directory",
                    )
                )
            return Failure(_io_error(f"cannot open dataDir {path}", exc))

    def close(self) -> None:
        os.close(self._fd)

    def names(self) -> Result[list[str], CniError]:
        try:
            return Success(sorted(os.listdir(self._fd)))
        except OSError as exc:
            return Failure(_io_error(f"cannot list dataDir {self.path}", exc))

    def read(self, name: str) -> Result[bytes | None, CniError]:
        """A record's bytes; None when there is none; error 5 when it is unreadable."""
        where = f"{self.path}/{name}"
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self._fd)
        except FileNotFoundError:
            return Success(None)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return Failure(CniError(Code.IO_FAILURE, f"state record {where} is a symlink"))
            return Failure(_io_error(f"cannot read state record {where}", exc))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return Failure(
                    CniError(Code.IO_FAILURE, f"state record {where} is not a regular file")
                )
            if info.st_size > MAX_RECORD_BYTES:
                return Failure(
                    CniError(Code.IO_FAILURE, f"state record {where} is too large to be one")
                )
            return Success(os.read(fd, MAX_RECORD_BYTES + 1))
        except OSError as exc:
            return Failure(_io_error(f"cannot read state record {where}", exc))
        finally:
            os.close(fd)

    def write(
        self, name: str, data: bytes, attributes: Mapping[str, str] | None = None
    ) -> Result[None, CniError]:
        """Replace a record atomically: temp file, fsync, rename, fsync of dataDir.

        ``attributes`` go into user extended attributes, beside the content, so
        that the content stays the bare delegate configuration; a file system
        without them loses only that metadata.
        """
        temp = TEMP_PREFIX + os.urandom(8).hex()
        try:
            fd = os.open(temp, _WRITE_FLAGS, RECORD_MODE, dir_fd=self._fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                for key, value in (attributes or {}).items():
                    with contextlib.suppress(OSError):
                        os.setxattr(fd, key, value.encode("utf-8", "surrogateescape"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
            os.fsync(self._fd)
        except OSError as exc:
            self._discard(temp)
            return Failure(_io_error(f"cannot write state record {self.path}/{name}", exc))
        return Success(None)

    def attribute(self, name: str, key: str) -> str | None:
        """An extended attribute of a record; None when absent or unsupported."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self._fd)
        except OSError:
            return None
        try:
            return os.getxattr(fd, key).decode("utf-8", "surrogateescape")
        except OSError:
            return None
        finally:
            os.close(fd)

    def age(self, name: str) -> float | None:
        """Seconds since ``name`` was last modified; None when it is gone."""
        try:
            info = os.stat(name, dir_fd=self._fd, follow_symlinks=False)
        except OSError:
            return None
        return time.time() - info.st_mtime

    def remove(self, name: str) -> Result[None, CniError]:
        """Remove a record (a symlink itself, never its target); absent is fine.

        An empty directory in a record's place goes too; a full one is an error.
        """
        try:
            try:
                os.unlink(name, dir_fd=self._fd)
            except IsADirectoryError:
                os.rmdir(name, dir_fd=self._fd)
            os.fsync(self._fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            return Failure(_io_error(f"cannot remove state record {self.path}/{name}", exc))
        return Success(None)

    def _discard(self, temp: str) -> None:
        # It may never have been created; if it was and cannot go, GC removes it.
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=self._fd)
