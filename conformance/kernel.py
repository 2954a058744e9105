"""Network namespaces made for the suite, and what the kernel says inside them.

Every namespace is named ``flcni-<run>-<label>`` so that the suite can find
and remove what it made, and prove at the end that nothing is left.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface, ip_interface, ip_network
from typing import Any

from pyroute2 import NetNS, netns

PREFIX = "flcni-"
NETNS_DIR = "/var/run/netns"


def run_id() -> str:
    return f"{os.getpid() % 100000}"


def our_namespaces() -> list[str]:
    """The namespaces this run made (another run's are its own business)."""
    mine = f"{PREFIX}{run_id()}-"
    return sorted(n for n in netns.listnetns() if n.startswith(mine))


@dataclass
class Namespace:
    name: str
    _made: bool = field(default=False, repr=False)

    @property
    def path(self) -> str:
        return f"{NETNS_DIR}/{self.name}"

    def create(self) -> Namespace:
        netns.create(self.name)
        self._made = True
        with NetNS(self.name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        return self

    def remove(self) -> None:
        if self.name in netns.listnetns():
            netns.remove(self.name)

    def exists(self) -> bool:
        return self.name in netns.listnetns()

    def sh(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    # -- reading the kernel -----------------------------------------------------------------------

    def links(self) -> dict[str, dict[str, Any]]:
        with NetNS(self.name) as ns:
            return {
                link.get_attr("IFLA_IFNAME"): {
                    "index": link["index"],
                    "mtu": link.get_attr("IFLA_MTU"),
                    "kind": _kind(link),
                    "master": link.get_attr("IFLA_MASTER"),
                }
                for link in ns.get_links()
            }

    def addresses(self, ifname: str) -> list[IPv4Interface | IPv6Interface]:
        with NetNS(self.name) as ns:
            found = ns.link_lookup(ifname=ifname)
            if not found:
                return []
            return [
                ip_interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
                for a in ns.get_addr(index=found[0])
                if a.get_attr("IFA_ADDRESS") is not None
            ]

    def global_addresses(self, ifname: str) -> list[IPv4Interface | IPv6Interface]:
        return [a for a in self.addresses(ifname) if not a.ip.is_link_local]

    def routes(self, family: int = socket.AF_INET) -> list[tuple[str, str | None]]:
        """(destination CIDR, gateway) of the main table."""
        with NetNS(self.name) as ns:
            found = []
            for route in ns.get_routes(family=family, table=254):
                dst = route.get_attr("RTA_DST")
                length = route["dst_len"]
                zero = "0.0.0.0" if family == socket.AF_INET else "::"  # noqa: S104 (a route, not a bind)
                cidr = str(ip_network(f"{dst or zero}/{length}", strict=False))
                found.append((cidr, route.get_attr("RTA_GATEWAY")))
            return found

    def delete_address(self, ifname: str, address: IPv4Interface | IPv6Interface) -> None:
        with NetNS(self.name) as ns:
            index = ns.link_lookup(ifname=ifname)[0]
            ns.addr(
                "del", index=index, address=str(address.ip), prefixlen=address.network.prefixlen
            )

    def delete_route(self, dst: str) -> None:
        self.sh("ip", "route", "del", dst)

    def iptables_save(self, table: str = "nat") -> str:
        out = self.sh("iptables-save", "-t", table, check=False).stdout
        return out + self.sh("ip6tables-save", "-t", table, check=False).stdout

    def ping(self, address: str, count: int = 1, attempts: int = 10) -> bool:
        """Whether ``address`` answers; retried while IPv6 addresses settle (DAD)."""
        for _ in range(attempts):
            done = self.sh("ping", "-c", str(count), "-W", "1", address, check=False)
            if done.returncode == 0:
                return True
            time.sleep(0.3)
        return False


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``condition``: the kernel tears a removed namespace (and its veth pair)
    down asynchronously."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


@contextmanager
def namespaces(label: str) -> Iterator[NamespaceFactory]:
    factory = NamespaceFactory(f"{PREFIX}{run_id()}-{label}")
    try:
        yield factory
    finally:
        factory.remove_all()


class NamespaceFactory:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.made: list[Namespace] = []

    def __call__(self, label: str) -> Namespace:
        namespace = Namespace(f"{self.prefix}-{label}"[:60]).create()
        self.made.append(namespace)
        return namespace

    def remove_all(self) -> None:
        # Pods first: their veth peers go with them; then the node with its bridge.
        for namespace in reversed(self.made):
            namespace.remove()
