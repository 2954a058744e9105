"""Fixtures of the conformance suite: real plugins, real namespaces, nothing left behind.

The suite fails, never skips, when it cannot run: not root, no network
namespaces, the reference plugins or the installed ``flannel`` missing.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.kernel import Namespace, NamespaceFactory, namespaces, our_namespaces, run_id
from conformance.runtime import Attachment, JsonObject, Runtime

REFERENCE_PLUGINS_DIR = Path("/usr/lib/cni")
REFERENCE_PLUGINS = ("bridge", "host-local", "portmap", "macvlan", "ipvlan")

SUBNET_ENV_V4 = """\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""

KUBE_FLANNEL_CONFLIST: JsonObject = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def flannel_executable() -> Path:
    """The plugin under test: $FLANNEL_PLUGIN (e.g. the single-file build), else the
    installed console script."""
    chosen = os.environ.get("FLANNEL_PLUGIN")
    if chosen:
        if not os.access(chosen, os.X_OK):
            pytest.fail(f"FLANNEL_PLUGIN={chosen} is not an executable file")
        return Path(chosen)
    beside = Path(sys.executable).parent / "flannel"
    found = beside if beside.exists() else shutil.which("flannel")
    if found is None:
        pytest.fail("the flannel executable is not installed (pip install .)")
    return Path(found)


def _root_snapshot() -> tuple[list[str], str]:
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    names = sorted(line.split(":")[1].strip() for line in links.splitlines())
    rules = "".join(
        subprocess.run([tool], capture_output=True, text=True, check=False).stdout
        for tool in ("iptables-save", "ip6tables-save")
    )
    kept = "\n".join(
        line
        for line in rules.splitlines()
        if line.startswith(("-A", "-N", ":", "*"))
        and not line.startswith(":")  # chain counters change with traffic
    )
    return names, kept


@pytest.fixture(scope="session", autouse=True)
def requirements_and_host_untouched() -> Iterator[None]:
    """Fail at once when the suite cannot run; at the end, prove the host is as it was."""
    if os.geteuid() != 0:
        pytest.fail("the conformance suite must run as root (network namespaces)")
    missing = [p for p in REFERENCE_PLUGINS if not (REFERENCE_PLUGINS_DIR / p).is_file()]
    if missing:
        pytest.fail(
            f"reference plugins missing from {REFERENCE_PLUGINS_DIR}: {missing}"
            " (apt-get install containernetworking-plugins)"
        )
    for tool in ("ip", "iptables-save", "ping"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (iproute2, iptables, iputils-ping)")
    flannel_executable()
    before = _root_snapshot()
    yield
    left = our_namespaces()
    after = _root_snapshot()
    assert left == [], f"network namespaces left behind: {left}"
    assert after[0] == before[0], "the suite changed the host's links"
    assert after[1] == before[1], "the suite changed the host's iptables rules"


class Node:
    """One node: its own network namespace, subnet.env, state and CNI_PATH."""

    def __init__(self, factory: NamespaceFactory, root: Path, label: str) -> None:
        self.factory = factory
        self.root = root
        self.label = label
        self.ns = factory("node")
        self.subnet_file = root / "subnet.env"
        self.data_dir = root / "flannel"
        self.ipam_dir = root / "host-local"
        self.bin_dir = root / "bin"
        self.bin_dir.mkdir()
        (self.bin_dir / "flannel").symlink_to(flannel_executable())
        self.runtime = Runtime(
            cni_path=[str(self.bin_dir), str(REFERENCE_PLUGINS_DIR)],
            cache_dir=root / "cache",
            node_netns=self.ns.name,
        )
        self.write_subnet_env(SUBNET_ENV_V4)
        self._ids = 0

    def write_subnet_env(self, text: str) -> None:
        self.subnet_file.write_text(text)

    def pod(self, label: str) -> Namespace:
        return self.factory(label)

    def container_id(self) -> str:
        self._ids += 1
        return f"{self.label}{run_id()}c{self._ids}"

    def attachment(self, pod: Namespace, ifname: str = "eth0", **caps: Any) -> Attachment:
        return Attachment(self.container_id(), pod.path, ifname, dict(caps))

    def conflist(self, base: JsonObject | None = None, **flannel_keys: Any) -> JsonObject:
        """A conflist whose flannel entry points at this node's files."""
        conflist = copy.deepcopy(base if base is not None else KUBE_FLANNEL_CONFLIST)
        for plugin in conflist["plugins"]:
            if plugin["type"] == "flannel":
                plugin.setdefault("subnetFile", str(self.subnet_file))
                plugin.setdefault("dataDir", str(self.data_dir))
                ipam = plugin.setdefault("ipam", {})
                ipam.setdefault("dataDir", str(self.ipam_dir))
                plugin.update(flannel_keys)
        return conflist

    def records(self) -> list[str]:
        if not self.data_dir.exists():
            return []
        return sorted(os.listdir(self.data_dir))

    def reservations(self, network: str = "cbr0") -> list[str]:
        """host-local's reserved addresses (files named after the address)."""
        directory = self.ipam_dir / network
        if not directory.exists():
            return []
        return sorted(
            name
            for name in os.listdir(directory)
            if name != "lock" and not name.startswith("last_reserved_ip")
        )

    def veths(self) -> list[str]:
        return sorted(n for n, link in self.ns.links().items() if link["kind"] == "veth")

    def record(self, name: str) -> JsonObject:
        loaded: JsonObject = json.loads((self.data_dir / name).read_text())
        return loaded

    def assert_clean(self) -> None:
        """Nothing an attachment made is left: records, reservations, veths, DNAT chains."""
        assert self.records() == [], f"state records left: {self.records()}"
        assert self.reservations() == [], f"host-local reservations left: {self.reservations()}"
        assert self.veths() == [], f"veths left in the node: {self.veths()}"
        nat = self.ns.iptables_save("nat")
        assert "CNI-DN-" not in nat, f"portmap DNAT chains left:\n{nat}"


_nodes = itertools.count(1)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A fresh node; its namespaces (and so its bridge, veths and rules) go afterwards."""
    number = next(_nodes)
    with namespaces(f"t{number}") as factory:
        yield Node(factory, tmp_path, f"t{number}")
