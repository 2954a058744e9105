"""Subnet drift: a record that allocates from a subnet the node no longer has (spec §6).

Apart from the records themselves: only CHECK and the operator tools need it,
and it brings ``ipaddress``, which DEL does not otherwise import.
"""

from ipaddress import IPv4Network, IPv6Network, ip_network

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.jsonvalue import JsonObject
from core.subnet_env import Lease


def record_subnets(record: JsonObject) -> list[IPv4Network | IPv6Network]:
    """The subnets a record's IPAM allocates from, in either layout.

    ``ranges`` is this plugin's and the current Go plugin's; ``subnet`` is the
    older Go plugin's.
    """
    ipam = record.get("ipam")
    if not isinstance(ipam, dict):
        return []
    texts: list[object] = [ipam.get("subnet")]
    ranges = ipam.get("ranges")
    if isinstance(ranges, list):
        for range_set in ranges:
            if isinstance(range_set, list):
                texts.extend(r.get("subnet") for r in range_set if isinstance(r, dict))
    found: list[IPv4Network | IPv6Network] = []
    for text in texts:
        if isinstance(text, str):
            try:
                found.append(ip_network(text, strict=False))
            except ValueError:
                continue
    return found


def check_drift(record: JsonObject, lease: Lease) -> Result[None, CniError]:
    """Error 102 when the record allocates from a subnet the node no longer has."""
    current = [s.network for s in (lease.subnet4, lease.subnet6) if s is not None]
    stale = [str(s) for s in record_subnets(record) if s not in current]
    if stale:
        return Failure(
            CniError(
                Code.SUBNET_DRIFT,
                f"the container's subnet {', '.join(stale)} is no longer this node's"
                f" flannel subnet ({', '.join(map(str, current))}): recreate the container",
            )
        )
    return Success(None)
