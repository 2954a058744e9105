"""Reading the runtime's configuration directory (``/etc/cni/net.d``) as libcni does."""

from __future__ import annotations

import os
from typing import Final

from returns.result import Failure, Result, Success

from core.conflist import ConfListing, FlannelNetwork, Network, is_conf_file, parse_network
from core.errors import CniError, Code
from core.findings import conf_findings

DEFAULT_CONF_DIR: Final = "/etc/cni/net.d"
# A network configuration is a few hundred bytes; a huge file is not one.
MAX_CONF_BYTES: Final = 1 << 20


def read_conf_file(path: str) -> Result[bytes, CniError]:
    """A configuration file's bytes; error 5 saying why it cannot be read."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONF_BYTES + 1)
    except OSError as exc:
        return Failure(CniError(Code.IO_FAILURE, f"cannot read {path}: {exc.strerror or exc}"))
    if len(data) > MAX_CONF_BYTES:
        return Failure(
            CniError(Code.IO_FAILURE, f"{path} is larger than {MAX_CONF_BYTES} bytes: not a config")
        )
    return Success(data)


def load_network(path: str) -> Result[Network, CniError]:
    return read_conf_file(path).bind(lambda data: parse_network(data, path))


def scan(conf_dir: str) -> ConfListing:
    """Every file libcni would load from ``conf_dir`` (sorted, as libcni orders them)."""
    try:
        names = sorted(os.listdir(conf_dir))
    except FileNotFoundError:
        return Failure(
            CniError(Code.IO_FAILURE, f"{conf_dir} does not exist: no network is configured")
        )
    except OSError as exc:
        return Failure(CniError(Code.IO_FAILURE, f"cannot list {conf_dir}: {exc.strerror or exc}"))
    paths = [os.path.join(conf_dir, name) for name in names if is_conf_file(name)]
    return Success(tuple((path, load_network(path)) for path in paths if os.path.isfile(path)))


def flannel_networks(listing: ConfListing) -> list[FlannelNetwork]:
    """The valid flannel networks of a listing (for tools that only need their paths)."""
    return conf_findings("", listing)[1]
