"""Appending log lines to the configuration's ``logFile``."""

from __future__ import annotations

import os
from typing import IO, Final

_FLAGS: Final = (
    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
)


def append(path: str, line: str, stderr: IO[str]) -> None:
    """Append ``line`` with one write(2), so concurrent writers never interleave.

    The file is created 0600. A failure is reported on stderr and otherwise
    ignored: a broken log file must never fail an ADD or DEL.
    """
    data = line.encode("utf-8", "surrogateescape")
    try:
        fd = os.open(path, _FLAGS, 0o600)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            stderr.write(f"flannel: logFile {path}: short write ({written} of {len(data)} bytes)\n")
    except OSError as exc:
        stderr.write(f"flannel: cannot append to logFile {path}: {exc.strerror or exc}\n")
