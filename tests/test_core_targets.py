"""Which subnet.env, dataDir and plugins the node's flannel networks use."""

from __future__ import annotations

import json

from core.conflist import FlannelNetwork, flannel_network, parse_network
from core.facts import PluginNeed
from core.netconf import DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE
from core.targets import (
    Target,
    data_dirs,
    plugin_needs,
    subnet_file_for,
    subnet_files,
    targets,
)


def flannel(name: str, version: str = "0.3.1", **entry: object) -> FlannelNetwork:
    conf = {
        "name": name,
        "cniVersion": version,
        "plugins": [{"type": "flannel", **entry}, {"type": "portmap"}],
    }
    data = json.dumps(conf).encode()
    return parse_network(data, f"{name}.conflist").bind(flannel_network).unwrap()


A = flannel("a", subnetFile="/run/a.env", dataDir="/var/a")
B = flannel("b", "1.0.0", subnetFile="/run/b.env", dataDir="/var/a", delegate={"type": "ptp"})


def test_without_networks_the_plugin_defaults_are_the_target() -> None:
    assert targets([], None, None) == (Target(None, DEFAULT_SUBNET_FILE, DEFAULT_DATA_DIR),)
    assert targets([], "/s", "/d") == (Target(None, "/s", "/d"),)


def test_each_network_gives_its_own_paths_unless_overridden() -> None:
    assert targets([A, B], None, None) == (
        Target("a", "/run/a.env", "/var/a"),
        Target("b", "/run/b.env", "/var/a"),
    )
    overridden = targets([A, B], "/s", None)
    assert subnet_files(overridden) == ("/s",)
    assert data_dirs(overridden) == ("/var/a",)


def test_a_record_is_judged_by_its_own_network_s_subnet_file() -> None:
    found = targets([A, B], None, None)
    assert subnet_file_for(found, "/var/a", "b") == "/run/b.env"
    assert subnet_file_for(found, "/var/a", "a") == "/run/a.env"
    assert subnet_file_for(found, "/var/a", None) == "/run/a.env"  # unknown: the first
    assert subnet_file_for(found, "/elsewhere", "a") is None


def test_plugin_needs_list_each_plugin_once_with_every_network_s_version() -> None:
    needs = plugin_needs([A, B])
    assert list(needs) == ["flannel", "bridge", "host-local", "portmap", "ptp"]
    assert needs["portmap"] == (PluginNeed("a", "0.3.1"), PluginNeed("b", "1.0.0"))
    assert needs["bridge"] == (PluginNeed("a", "0.3.1"),)
    assert needs["ptp"] == (PluginNeed("b", "1.0.0"),)
