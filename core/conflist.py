"""Network configuration files as a runtime loads them, and flannel's entry in them.

Operators' tools must judge exactly what the runtime will hand the plugin.
libcni reads a ``.conflist`` (a named list of plugins) or a ``.conf``/``.json``
(one plugin, a list of one) and gives each plugin of a list its own entry with
the list's ``name`` and ``cniVersion`` inserted. Doing the same here, purely,
lets ``render`` and ``doctor`` validate the request ADD would receive instead
of a file that is never sent as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.jsonvalue import JsonObject, decode_object, encode, type_name
from core.netconf import DEFAULT_DELEGATE_TYPE, DEFAULT_IPAM_TYPE, NetConf, parse_netconf
from core.versions import IMPLICIT_VERSION

# The file names libcni loads from a configuration directory.
CONF_SUFFIXES: Final = (".conf", ".conflist", ".json")
FLANNEL_TYPE: Final = "flannel"


@dataclass(frozen=True, slots=True)
class Network:
    """One configuration file: a list of plugin entries under one network name.

    ``name`` and ``cni_version`` are the list's (None for a single ``.conf``,
    whose one entry carries its own and is sent unchanged).
    """

    source: str
    is_list: bool
    name: str | None
    cni_version: str | None
    plugins: tuple[JsonObject, ...]

    @property
    def version(self) -> str:
        """The version the runtime speaks to this network's plugins."""
        if self.is_list:
            return self.cni_version or IMPLICIT_VERSION
        version = self.plugins[0].get("cniVersion", IMPLICIT_VERSION)
        return version if isinstance(version, str) else IMPLICIT_VERSION

    @property
    def display_name(self) -> str:
        name = self.name if self.is_list else self.plugins[0].get("name")
        return name if isinstance(name, str) else "?"


# A configuration directory: each file's path and what it holds, or why it cannot be listed.
ConfListing = Result[tuple[tuple[str, Result[Network, CniError]], ...], CniError]


@dataclass(frozen=True, slots=True)
class FlannelNetwork:
    """A network whose flannel entry validated as ADD would validate it."""

    network: Network
    conf: NetConf


def is_conf_file(file_name: str) -> bool:
    """Whether libcni would load ``file_name`` from a configuration directory."""
    return file_name.endswith(CONF_SUFFIXES)


def parse_network(data: bytes, source: str) -> Result[Network, CniError]:
    """A configuration file's content; error 6 when it is not JSON, 7 when not a network.

    A ``.conflist`` is a list; a ``.conf`` or ``.json`` is one plugin; any other
    name is a list when it has ``plugins``.
    """
    return decode_object(data, source).bind(lambda obj: _network(obj, source))


def _network(obj: JsonObject, source: str) -> Result[Network, CniError]:
    is_list = source.endswith(".conflist") or (
        not source.endswith((".conf", ".json")) and "plugins" in obj
    )
    if not is_list:
        return Success(Network(source, False, None, None, (obj,)))
    name, version, plugins = obj.get("name"), obj.get("cniVersion"), obj.get("plugins")
    if not isinstance(name, str) or name == "":
        return Failure(_invalid(f"{source}: a configuration list needs a 'name' string"))
    if version is not None and not isinstance(version, str):
        return Failure(_invalid(f"{source}: cniVersion must be a string, not {type_name(version)}"))
    if not isinstance(plugins, list) or not plugins:
        return Failure(_invalid(f"{source}: 'plugins' must be a non-empty array"))
    for index, entry in enumerate(plugins):
        if not isinstance(entry, dict):
            return Failure(
                _invalid(f"{source}: plugins[{index}] must be an object, not {type_name(entry)}")
            )
    return Success(Network(source, True, name, version, tuple(plugins)))


def flannel_request(network: Network) -> Result[JsonObject, CniError]:
    """The configuration the runtime sends the network's flannel entry (a copy).

    In a list, libcni overrides the entry's ``name`` and ``cniVersion`` with
    the list's; a list without ``cniVersion`` leaves the entry's alone.
    """
    entry = next((p for p in network.plugins if p.get("type") == FLANNEL_TYPE), None)
    if entry is None:
        types = ", ".join(repr(p.get("type")) for p in network.plugins)
        return Failure(
            _invalid(f"{network.source} has no plugin of type {FLANNEL_TYPE!r} (it has {types})")
        )
    request = copy.deepcopy(entry)
    if network.is_list:
        request["name"] = network.name
        if network.cni_version is not None:
            request["cniVersion"] = network.cni_version
    return Success(request)


def has_flannel(network: Network) -> bool:
    return any(p.get("type") == FLANNEL_TYPE for p in network.plugins)


def flannel_network(network: Network) -> Result[FlannelNetwork, CniError]:
    """The network's flannel entry, validated exactly as the plugin's ADD validates it."""
    return (
        flannel_request(network)
        .bind(lambda request: parse_netconf(encode(request), "ADD"))
        .map(lambda conf: FlannelNetwork(network, conf))
    )


def plugin_types(flannel: FlannelNetwork) -> tuple[str, ...]:
    """Every executable ADD on this network needs, in list order, each once.

    The flannel entry needs itself, its delegate (default bridge) and the
    delegate's IPAM (default host-local); every other entry needs its type.
    """
    found: list[str] = []
    for entry in flannel.network.plugins:
        if entry.get("type") == FLANNEL_TYPE:
            conf = flannel.conf
            candidates: Sequence[object] = (
                conf.type,
                conf.delegate.get("type", DEFAULT_DELEGATE_TYPE),
                conf.ipam.get("type", DEFAULT_IPAM_TYPE),
            )
        else:
            candidates = (entry.get("type"),)
        for plugin_type in candidates:
            if isinstance(plugin_type, str) and plugin_type and plugin_type not in found:
                found.append(plugin_type)
    return tuple(found)


def _invalid(msg: str) -> CniError:
    return CniError(Code.INVALID_NETWORK_CONFIG, msg)
