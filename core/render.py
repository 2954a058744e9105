"""Rendering of the delegate configuration from a NetConf and a Lease (spec §4)."""

from __future__ import annotations

from core.jsonvalue import JsonObject, clone
from core.netconf import DEFAULT_DELEGATE_TYPE, DEFAULT_IPAM_TYPE, NetConf
from core.subnet_env import Lease


def render_delegate(conf: NetConf, lease: Lease) -> JsonObject:
    """The configuration ADD hands to the delegate.

    Total for validated inputs; deterministic; copies everything it takes from
    ``conf`` so that the caller's values are never mutated.
    """
    rendered: JsonObject = clone(conf.delegate)
    rendered["name"] = conf.name
    rendered.setdefault("type", DEFAULT_DELEGATE_TYPE)
    if conf.version_given:
        rendered["cniVersion"] = conf.cni_version
    # Whoever masquerades, only one does: flanneld or the delegate.
    rendered.setdefault("ipMasq", not lease.ipmasq)
    rendered.setdefault("mtu", lease.mtu)
    if rendered["type"] == "bridge":
        rendered.setdefault("isGateway", True)
    if conf.runtime_config is not None:
        rendered["runtimeConfig"] = clone(conf.runtime_config)
    rendered["ipam"] = _ipam(conf, lease)
    return rendered


def _ipam(conf: NetConf, lease: Lease) -> JsonObject:
    ipam: JsonObject = clone(conf.ipam)
    ipam.setdefault("type", DEFAULT_IPAM_TYPE)
    ipam["ranges"] = [
        [{"subnet": str(subnet.network)}]
        for subnet in (lease.subnet4, lease.subnet6)
        if subnet is not None
    ]
    ipam["routes"] = list(ipam.get("routes", [])) + [
        {"dst": str(network)} for network in (*lease.networks4, *lease.networks6)
    ]
    return ipam
