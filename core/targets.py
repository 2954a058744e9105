"""Which subnet.env, dataDir and plugins the node's flannel networks use.

The tools take these from the configuration the runtime really loads, so an
operator who never passed a flag still looks at the files ADD uses; a flag
overrides every network at once (one node rarely runs two flannel networks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.conflist import FlannelNetwork, plugin_types
from core.facts import PluginNeed
from core.netconf import DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE


@dataclass(frozen=True, slots=True)
class Target:
    """The subnet.env and dataDir of one network (``network`` None: defaults, no network)."""

    network: str | None
    subnet_file: str
    data_dir: str


def targets(
    networks: Sequence[FlannelNetwork], subnet_file: str | None, data_dir: str | None
) -> tuple[Target, ...]:
    """One target per flannel network; the plugin's defaults when there is none."""
    if not networks:
        return (Target(None, subnet_file or DEFAULT_SUBNET_FILE, data_dir or DEFAULT_DATA_DIR),)
    return tuple(
        Target(n.conf.name, subnet_file or n.conf.subnet_file, data_dir or n.conf.data_dir)
        for n in networks
    )


def subnet_files(found: Sequence[Target]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.subnet_file for t in found))


def data_dirs(found: Sequence[Target]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.data_dir for t in found))


def subnet_file_for(found: Sequence[Target], data_dir: str, network: object) -> str | None:
    """The subnet.env a record in ``data_dir`` of network ``network`` is judged against.

    Networks may share a dataDir: the record's own network wins, else the
    first network using that dataDir.
    """
    candidates = [t for t in found if t.data_dir == data_dir]
    for target in candidates:
        if target.network == network:
            return target.subnet_file
    return candidates[0].subnet_file if candidates else None


def plugin_needs(networks: Sequence[FlannelNetwork]) -> dict[str, tuple[PluginNeed, ...]]:
    """Every plugin type the networks need, with who needs it at which cniVersion."""
    needs: dict[str, list[PluginNeed]] = {}
    for flannel in networks:
        need = PluginNeed(flannel.network.display_name, flannel.network.version)
        for plugin_type in plugin_types(flannel):
            listed = needs.setdefault(plugin_type, [])
            if need not in listed:
                listed.append(need)
    return {plugin_type: tuple(listed) for plugin_type, listed in needs.items()}
