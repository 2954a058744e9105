"""Hypothesis strategies for the core's inputs (spec §2-§5).

Valid values are built directly (a filter only ever drops a reserved key), and
a subnet.env case carries the lease the spec says it describes, so that tests
compare against the spec rather than against the implementation. Invalid
values have strategies and tables of their own.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import (
    IPv4Interface,
    IPv4Network,
    IPv6Interface,
    IPv6Network,
    ip_network,
)
from typing import Any, Final

from hypothesis import strategies as st

from core.versions import SUPPORTED_VERSIONS

JsonObject = dict[str, Any]

# ---------------------------------------------------------------- spec §2 tables

SPEC_VERSIONS: Final = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
COMMANDS: Final = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
NETCONF_COMMANDS: Final = ("ADD", "DEL", "CHECK", "STATUS", "GC")
# CHECK exists from 0.4.0; STATUS and GC from 1.1.0.
FIRST_VERSION: Final[Mapping[str, str]] = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}
REQUIRED_VARIABLES: Final[Mapping[str, tuple[str, ...]]] = {
    "ADD": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_COMMAND", "CNI_PATH"),
    "STATUS": ("CNI_COMMAND", "CNI_PATH"),
    "VERSION": ("CNI_COMMAND",),
}
VALID_ATTACHMENTS: Final = "cni.dev/valid-attachments"
OWN_TYPE: Final = "flannel"

V4_POOL: Final = IPv4Network("10.244.0.0/16")
V6_POOL: Final = IPv6Network("fd00:10:244::/48")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def allowed(command: str, version: str) -> bool:
    """Whether the spec lets a config of ``version`` be asked ``command``."""
    first = FIRST_VERSION.get(command)
    return first is None or version_key(version) >= version_key(first)


def versions_for(command: str) -> tuple[str, ...]:
    return tuple(v for v in SUPPORTED_VERSIONS if allowed(command, v))


# ---------------------------------------------------------------- identifiers

_SPEC_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def spec_valid_id(value: str) -> bool:
    """Spec §2: container IDs and network names."""
    return _SPEC_ID.fullmatch(value) is not None


def spec_valid_ifname(value: str) -> bool:
    """Spec §2: 1-15 bytes, not "." or "..", no "/", ":" or whitespace."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        return False
    return (
        1 <= size <= 15
        and value not in (".", "..")
        and not any(ch in "/:" or ch.isspace() for ch in value)
    )


_ID_FIRST: Final = string.ascii_letters + string.digits
_ID_REST: Final = _ID_FIRST + "_.-"


@functools.cache
def identifiers(max_size: int = 40) -> st.SearchStrategy[str]:
    """Container IDs and network names: ``[A-Za-z0-9][A-Za-z0-9_.-]*``."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_ID_FIRST),
        st.text(alphabet=_ID_REST, max_size=max_size),
    )


@functools.cache
def container_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        identifiers(),
        st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    )


# Characters for interface names, with their UTF-8 sizes 1 to 4 bytes.
_IFNAME_CHARS: Final = string.ascii_letters + string.digits + "-_.@+" + "éü日本🙂"


_IFNAME_LISTS: Final = st.lists(st.sampled_from(_IFNAME_CHARS), min_size=1, max_size=15)


@st.composite
def ifnames(draw: st.DrawFn) -> str:
    """1-15 bytes, not "." or "..", no "/", ":" or whitespace (multibyte included)."""
    chars = draw(_IFNAME_LISTS)
    name = ""
    for ch in chars:
        if len((name + ch).encode()) > 15:
            break
        name += ch
    if name in ("", ".", ".."):
        return name.replace(".", "d") or "eth0"
    return name


@functools.cache
def plugin_types() -> st.SearchStrategy[str]:
    """Delegate types: bare plugin names, never ours."""
    return st.one_of(
        st.sampled_from(["bridge", "macvlan", "ipvlan", "ptp", "host-device", "vlan"]),
        identifiers(max_size=12).map(lambda s: "x" + s),
    )


@functools.cache
def ipam_types() -> st.SearchStrategy[str]:
    return st.sampled_from(["host-local", "static", "dhcp", "whereabouts"])


@functools.cache
def absolute_paths() -> st.SearchStrategy[str]:
    part = st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=8)
    return st.lists(part, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))


# ---------------------------------------------------------------- JSON values


@functools.cache
def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    )


@functools.cache
def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    return st.recursive(
        json_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(max_size=8), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


@functools.cache
def json_objects(max_size: int = 4) -> st.SearchStrategy[JsonObject]:
    return st.dictionaries(st.text(max_size=10), json_values(), max_size=max_size)


# ---------------------------------------------------------------- addresses


@st.composite
def v4_networks(draw: st.DrawFn) -> IPv4Network:
    prefix = draw(st.integers(16, 28))
    index = draw(st.integers(0, 2 ** (prefix - 16) - 1))
    return IPv4Network((int(V4_POOL.network_address) + (index << (32 - prefix)), prefix))


@st.composite
def v6_networks(draw: st.DrawFn) -> IPv6Network:
    prefix = draw(st.integers(48, 64))
    index = draw(st.integers(0, 2 ** (prefix - 48) - 1))
    return IPv6Network((int(V6_POOL.network_address) + (index << (128 - prefix)), prefix))


@st.composite
def v4_subnets(draw: st.DrawFn) -> IPv4Interface:
    """An address with its prefix, host bits set, as FLANNEL_SUBNET holds it."""
    prefix = draw(st.integers(16, 30))
    host = draw(st.integers(1, 2**16 - 2))
    return IPv4Interface((int(V4_POOL.network_address) + host, prefix))


@st.composite
def v6_subnets(draw: st.DrawFn) -> IPv6Interface:
    prefix = draw(st.integers(56, 120))
    host = draw(st.integers(1, 2**80 - 1))
    return IPv6Interface((int(V6_POOL.network_address) + host, prefix))


_ADDRESSES: Final = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))


@st.composite
def cidr_texts(draw: st.DrawFn) -> str:
    """Any CIDR of either family, as a route's dst."""
    address = draw(_ADDRESSES)
    prefix = draw(st.integers(0, address.max_prefixlen))
    return str(ip_network(f"{address}/{prefix}", strict=False))


@st.composite
def routes(draw: st.DrawFn) -> JsonObject:
    route: JsonObject = {"dst": draw(cidr_texts())}
    if draw(st.booleans()):
        route["gw"] = str(draw(_ADDRESSES))
    return route


# ---------------------------------------------------------------- subnet.env (spec §3)


@dataclass(frozen=True)
class SubnetEnvCase:
    """A subnet.env text and the lease it describes, per spec §3."""

    text: bytes
    networks4: tuple[IPv4Network, ...]
    subnet4: IPv4Interface | None
    networks6: tuple[IPv6Network, ...]
    subnet6: IPv6Interface | None
    mtu: int
    ipmasq: bool


def _dedup(items: list[Any]) -> tuple[Any, ...]:
    kept: list[Any] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return tuple(kept)


_PRINTABLE: Final = st.characters(
    exclude_categories=("Cs", "Cc", "Zl", "Zp"),
)
_UNKNOWN_KEYS: Final = ("FLANNEL_BACKEND", "FLANNEL_NETWORK_ID", "HOSTNAME", "flannel_mtu", "X")


_V4_POOLS: Final = st.lists(v4_networks(), min_size=1, max_size=3)
_V6_POOLS: Final = st.lists(v6_networks(), min_size=1, max_size=3)
_EXTRA_LINES: Final = st.lists(
    st.one_of(
        st.just(""),
        st.sampled_from([" ", "\t", "  \t "]),
        st.text(_PRINTABLE, max_size=20).map(lambda t: "#" + t),
        st.builds(
            lambda k, v: f"{k}={v}",
            st.sampled_from(_UNKNOWN_KEYS),
            st.text(_PRINTABLE, max_size=12),
        ),
    ),
    max_size=5,
)
_SPACE: Final = st.sampled_from(["", " ", "\t", " \t"])
_ENDS: Final = st.sampled_from(["\n", "\r\n"])


@st.composite
def subnet_env_cases(draw: st.DrawFn, family: str | None = None) -> SubnetEnvCase:
    """A valid subnet.env: "v4", "v6" or "dual", with every tolerated variation."""
    fam = family or draw(st.sampled_from(["v4", "v6", "dual"]))
    values: dict[str, str] = {}
    networks4: tuple[IPv4Network, ...] = ()
    networks6: tuple[IPv6Network, ...] = ()
    subnet4: IPv4Interface | None = None
    subnet6: IPv6Interface | None = None
    if fam in ("v4", "dual"):
        pool4 = draw(_V4_POOLS)
        listed4 = draw(st.lists(st.sampled_from(pool4), min_size=1, max_size=5))
        networks4 = _dedup(listed4)
        subnet4 = draw(v4_subnets())
        values["FLANNEL_NETWORK"] = ",".join(map(str, listed4))
        values["FLANNEL_SUBNET"] = str(subnet4)
    if fam in ("v6", "dual"):
        pool6 = draw(_V6_POOLS)
        listed6 = draw(st.lists(st.sampled_from(pool6), min_size=1, max_size=5))
        networks6 = _dedup(listed6)
        subnet6 = draw(v6_subnets())
        values["FLANNEL_IPV6_NETWORK"] = ",".join(map(str, listed6))
        values["FLANNEL_IPV6_SUBNET"] = str(subnet6)
    mtu = draw(st.integers(0, 65535))
    values["FLANNEL_MTU"] = str(mtu)
    ipmasq = draw(st.booleans())
    values["FLANNEL_IPMASQ"] = (
        "true" if ipmasq else draw(st.sampled_from(["false", "no", "0", "", "yes"]))
    )

    lines = [f"{key}={value}" for key, value in values.items()]
    extra = draw(_EXTRA_LINES)
    lines = draw(st.permutations(lines + extra))
    space = _SPACE
    decorated = []
    for line in lines:
        body = line
        if "=" in line and not line.lstrip().startswith("#") and draw(st.booleans()):
            key, _, value = line.partition("=")
            body = f"{key}{draw(space)}={draw(space)}{value}"
        decorated.append(f"{draw(space)}{body}{draw(space)}")
    ends = _ENDS
    text = "".join(line + draw(ends) for line in decorated)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return SubnetEnvCase(
        text=text.encode(),
        networks4=networks4,
        subnet4=subnet4,
        networks6=networks6,
        subnet6=subnet6,
        mtu=mtu,
        ipmasq=ipmasq,
    )


# Malformed values per key: (key, value). Every one must be error 6 naming key and line.
MALFORMED_VALUES: Final = (
    ("FLANNEL_NETWORK", ""),
    ("FLANNEL_NETWORK", "banana"),
    ("FLANNEL_NETWORK", "10.244.0.0/16,"),
    ("FLANNEL_NETWORK", "10.244.0.0/33"),
    ("FLANNEL_NETWORK", "fd00:10:244::/48"),
    ("FLANNEL_NETWORK", "10.244.0.0/16,fd00:10:244::/48"),
    ("FLANNEL_SUBNET", ""),
    ("FLANNEL_SUBNET", "10.244.7.1"),
    ("FLANNEL_SUBNET", "10.244.7.300/24"),
    ("FLANNEL_SUBNET", "fd00:10:244:7::1/64"),
    ("FLANNEL_IPV6_NETWORK", "10.244.0.0/16"),
    ("FLANNEL_IPV6_NETWORK", "fd00:10:244::/129"),
    ("FLANNEL_IPV6_SUBNET", "fd00:10:244:7::1"),
    ("FLANNEL_IPV6_SUBNET", "10.244.7.1/24"),
    ("FLANNEL_IPV6_SUBNET", "zz::1/64"),
    ("FLANNEL_MTU", ""),
    ("FLANNEL_MTU", "-1"),
    ("FLANNEL_MTU", "1.5"),
    ("FLANNEL_MTU", "1450x"),
    ("FLANNEL_MTU", "abc"),
    ("FLANNEL_MTU", "\uff11\uff14\uff15\uff10"),  # full-width digits
)


# ---------------------------------------------------------------- network configs (spec §4)

# Keys a delegate object keeps as given (spec §4 table: "kept"), with plausible values.
_DELEGATE_KNOWN: Final = {
    "ipMasq": st.booleans(),
    "mtu": st.integers(68, 9000),
    "isGateway": st.booleans(),
    "hairpinMode": st.booleans(),
    "isDefaultGateway": st.booleans(),
    "bridge": st.just("cni0"),
}
# Keys the spec's table fills from elsewhere or forbids in a delegate.
DELEGATE_RESERVED: Final = frozenset({"name", "ipam", "type", "cniVersion", "runtimeConfig"})


_DELEGATE_EXTRA: Final = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in DELEGATE_RESERVED), json_values(), max_size=3
)
_DELEGATE_KNOWN_KEYS: Final = st.fixed_dictionaries({}, optional=_DELEGATE_KNOWN)


@st.composite
def delegates(draw: st.DrawFn) -> JsonObject:
    """A delegate object: arbitrary extra keys, never name or ipam."""
    extra = draw(_DELEGATE_EXTRA)
    known = draw(_DELEGATE_KNOWN_KEYS)
    delegate: JsonObject = {**extra, **known}
    if draw(st.booleans()):
        delegate["type"] = draw(plugin_types())
    return delegate


_IPAM_EXTRA: Final = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in ("type", "routes")), json_values(), max_size=3
)
_ROUTE_LISTS: Final = st.lists(routes(), max_size=4)


@st.composite
def ipams(draw: st.DrawFn) -> JsonObject:
    """An ipam object: optional type and valid routes, plus arbitrary keys."""
    ipam: JsonObject = draw(_IPAM_EXTRA)
    if draw(st.booleans()):
        ipam["type"] = draw(ipam_types())
    if draw(st.booleans()):
        ipam["routes"] = draw(_ROUTE_LISTS)
    return ipam


_PAIR_LISTS: Final = st.lists(st.tuples(container_ids(), ifnames()), max_size=4)


@st.composite
def attachments(draw: st.DrawFn) -> list[JsonObject]:
    pairs = draw(_PAIR_LISTS)
    return [{"containerID": cid, "ifname": ifname} for cid, ifname in pairs]


_UNKNOWN_TOP_LEVEL: Final = st.dictionaries(
    st.text(max_size=8).map(lambda k: "x-" + k), json_values(), max_size=2
)
_OPTIONAL_KEYS: Final = st.fixed_dictionaries(
    {},
    optional={
        "delegate": delegates(),
        "ipam": ipams(),
        "runtimeConfig": json_objects(),
        "prevResult": json_objects(),
        "args": json_objects(),
        "subnetFile": absolute_paths(),
        "dataDir": absolute_paths(),
    },
)
_ATTACHMENTS: Final = attachments()


@st.composite
def netconfs(draw: st.DrawFn, command: str = "ADD") -> JsonObject:
    """A valid network configuration for ``command`` as a decoded JSON object."""
    conf: JsonObject = draw(_UNKNOWN_TOP_LEVEL)
    conf["name"] = draw(identifiers(max_size=20))
    conf["type"] = OWN_TYPE
    if command in FIRST_VERSION or draw(st.integers(0, 4)) > 0:
        conf["cniVersion"] = draw(st.sampled_from(versions_for(command)))
    conf.update(draw(_OPTIONAL_KEYS))
    if command == "GC":
        conf[VALID_ATTACHMENTS] = draw(_ATTACHMENTS)
    return conf


def encode_json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode()


# ---------------------------------------------------------------- CNI environments (spec §2)


@st.composite
def cni_args(draw: st.DrawFn) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A CNI_ARGS text ``K=V;K2=V2`` and the pairs it holds."""
    key = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=12)
    value = st.text(alphabet=string.ascii_letters + string.digits + "-./", max_size=12)
    pairs = tuple(draw(st.lists(st.tuples(key, value), max_size=4)))
    return ";".join(f"{k}={v}" for k, v in pairs), pairs


@st.composite
def cni_environments(draw: st.DrawFn, command: str | None = None) -> dict[str, str]:
    """A valid environment for ``command`` (any command when None)."""
    cmd = command or draw(st.sampled_from(COMMANDS))
    env: dict[str, str] = draw(
        st.fixed_dictionaries({}, optional={"PATH": st.just("/usr/bin"), "HOME": st.just("/")})
    )
    env["CNI_COMMAND"] = cmd
    if "CNI_CONTAINERID" in REQUIRED_VARIABLES[cmd]:
        env["CNI_CONTAINERID"] = draw(container_ids())
        env["CNI_IFNAME"] = draw(ifnames())
        env["CNI_NETNS"] = (
            "" if cmd == "DEL" and draw(st.booleans()) else "/var/run/netns/" + draw(identifiers())
        )
    if cmd != "VERSION":
        env["CNI_PATH"] = ":".join(draw(st.lists(absolute_paths(), min_size=1, max_size=3)))
    if draw(st.booleans()):
        env["CNI_ARGS"] = draw(cni_args())[0]
    return env


# ---------------------------------------------------------------- invalid inputs

_BAD_ID_CHARS: Final = "/: \t\\$*?!é#%\u00a0"


@st.composite
def invalid_container_ids(draw: st.DrawFn) -> str:
    """Not ``[A-Za-z0-9][A-Za-z0-9_.-]*`` (never empty: empty means missing)."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(
            st.sampled_from(["../../etc/x", "..", ".", "-a", "_a", ".hidden", "/abs", "a/b"])
        )
    valid = draw(identifiers(max_size=10))
    if choice == 1:
        return draw(st.sampled_from("_.-" + _BAD_ID_CHARS)) + valid
    at = draw(st.integers(0, len(valid)))
    return valid[:at] + draw(st.sampled_from(_BAD_ID_CHARS)) + valid[at:]


@st.composite
def invalid_ifnames(draw: st.DrawFn) -> str:
    """Non-empty but not a valid interface name."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.sampled_from([".", "..", "a" * 16, "é" * 8, "日" * 6, "veth/0", "eth:0"]))
    valid = draw(ifnames())
    if choice == 1:
        return valid + "x" * (16 - len(valid.encode()) + draw(st.integers(0, 5)))
    bad = draw(st.sampled_from("/: \t\n\r\x0b\x0c\u00a0\u3000"))
    at = draw(st.integers(0, len(valid)))
    return valid[:at] + bad + valid[at:]  # a forbidden character, or too long, or both


INVALID_ROUTES: Final[tuple[object, ...]] = (
    "10.244.0.0/16",
    42,
    None,
    [],
    {},
    {"gw": "10.244.0.1"},
    {"dst": "10.244.0.0"},
    {"dst": "banana/8"},
    {"dst": "10.244.0.0/33"},
    {"dst": 10},
    {"dst": "10.244.0.0/16", "gw": "nope"},
    {"dst": "10.244.0.0/16", "gw": ""},
    {"dst": "10.244.0.0/16", "gw": 7},
    {"dst": "10.244.0.0/16", "gw": "10.244.0.1/24"},
)
