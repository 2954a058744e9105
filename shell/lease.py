"""Reading the node's lease from subnet.env (spec §3)."""

from __future__ import annotations

from typing import Final

from returns.result import Failure, Result

from core.errors import CniError, Code
from core.subnet_env import Lease, parse_subnet_env

# flanneld writes a few hundred bytes; anything much larger is not its file.
MAX_SUBNET_ENV_BYTES: Final = 64 * 1024


def read_lease(path: str) -> Result[Lease, CniError]:
    """The lease in ``path``; error 11 while flanneld has not written it."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SUBNET_ENV_BYTES + 1)
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
