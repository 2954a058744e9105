"""``flannel-cni render``: the delegate configuration ADD would produce, executing nothing.

It takes the same path as ADD (the flannel entry as libcni would send it,
parse_netconf, subnet.env, render_delegate), so what it prints is what the
delegate would receive, and what it refuses ADD would refuse with the same
CNI error.
"""

from __future__ import annotations

import json
from typing import IO

from returns.result import Failure, Result, Success

from core.conflist import FlannelNetwork, flannel_network, flannel_request, parse_network
from core.errors import CniError
from core.jsonvalue import JsonObject
from core.render import render_delegate
from core.versions import LATEST, SUPPORTED_VERSIONS
from shell.lease import read_lease
from shell.tools.confdir import read_conf_file


def rendered(conf_path: str, subnet_file: str | None) -> Result[JsonObject, CniError]:
    """The delegate configuration for CONF and subnet.env, or the CNI error ADD would give."""
    return (
        read_conf_file(conf_path)
        .bind(lambda data: parse_network(data, conf_path))
        .bind(flannel_network)
        .bind(lambda flannel: _with_lease(flannel, subnet_file))
    )


def _with_lease(flannel: FlannelNetwork, subnet_file: str | None) -> Result[JsonObject, CniError]:
    path = subnet_file if subnet_file is not None else flannel.conf.subnet_file
    return read_lease(path).map(lambda lease: render_delegate(flannel.conf, lease))


def _error_version(conf_path: str) -> str:
    """The cniVersion an error object carries: the request's when we speak it, as ADD's."""
    request = (
        read_conf_file(conf_path)
        .bind(lambda data: parse_network(data, conf_path))
        .bind(flannel_request)
    )
    version = request.map(lambda r: r.get("cniVersion", LATEST)).value_or(LATEST)
    return version if version in SUPPORTED_VERSIONS else LATEST


def run(conf_path: str, subnet_file: str | None, stdout: IO[str]) -> int:
    """Print the rendering (exit 0) or the CNI error object (exit 1)."""
    match rendered(conf_path, subnet_file):
        case Success(config):
            stdout.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
            return 0
        case Failure(error):
            stdout.write(json.dumps(error.to_object(_error_version(conf_path))) + "\n")
            return 1
    raise AssertionError("unreachable")
