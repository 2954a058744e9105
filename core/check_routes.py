"""Explicit route gateways in the prevResult that CHECK hands to a delegate.

IPAM installs a route without ``gw`` through the gateway of its family's
address, so the kernel holds ``10.244.0.0/16 via 10.244.7.1``. Delegates
before containernetworking/plugins v1.3.0 (Debian's 1.1.1 among them) look for
a route with no gateway at all, do not find it, and fail CHECK on every
healthy container (containernetworking/plugins#886). Writing the gateway the
route really uses into the result describes the same route, so fixed delegates
accept it too.
"""

from __future__ import annotations

from ipaddress import ip_interface, ip_network

from core.jsonvalue import JsonObject, clone


def with_route_gateways(prev_result: JsonObject) -> JsonObject:
    """A copy of a CNI result whose gateway-less routes name their family's gateway."""
    result = clone(prev_result)
    gateways = _gateways(result.get("ips"))
    routes = result.get("routes")
    if not isinstance(routes, list):
        return result
    for route in routes:
        if not isinstance(route, dict) or route.get("gw") or not isinstance(route.get("dst"), str):
            continue
        try:
            version = ip_network(route["dst"], strict=False).version
        except ValueError:
            continue
        if version in gateways:
            route["gw"] = gateways[version]
    return result


def _gateways(ips: object) -> dict[int, str]:
    found: dict[int, str] = {}
    if not isinstance(ips, list):
        return found
    for entry in ips:
        if not isinstance(entry, dict):
            continue
        address, gateway = entry.get("address"), entry.get("gateway")
        if not isinstance(address, str) or not isinstance(gateway, str):
            continue
        try:
            version = ip_interface(address).version
        except ValueError:
            continue
        found.setdefault(version, gateway)
    return found
