"""Reading the node's lease from subnet.env (spec §3)."""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

from returns.result import Failure, Result

from core.errors import CniError, Code
from core.subnet_env import Lease, parse_subnet_env

# flanneld writes a few hundred bytes; anything much larger is not its file.
MAX_SUBNET_ENV_BYTES: Final = 64 * 1024


def _read_regular(path: str) -> bytes:
    # O_NONBLOCK: a FIFO in subnet.env's place must not hang the plugin; then
    # anything but a regular file is refused before it is read.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.read(fd, MAX_SUBNET_ENV_BYTES + 1)
    finally:
        os.close(fd)


def read_lease(path: str) -> Result[Lease, CniError]:
    """The lease in ``path``; error 11 while flanneld has not written it."""
    try:
        data = _read_regular(path)
    except FileNotFoundError:
        return Failure(
            CniError(
                Code.TRY_AGAIN_LATER,
                f"{path} does not exist: flanneld is not running or has not leased"
                " this node's subnet yet",
            )
        )
    except OSError as exc:
        return Failure(CniError(Code.IO_FAILURE, f"cannot read {path}: {exc.strerror or exc}"))
    if len(data) > MAX_SUBNET_ENV_BYTES:
        return Failure(
            CniError(
                Code.DECODE_FAILURE,
                f"{path} is larger than {MAX_SUBNET_ENV_BYTES} bytes: not a subnet.env",
            )
        )
    return parse_subnet_env(data, path)
