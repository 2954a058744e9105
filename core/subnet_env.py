"""subnet.env, the node's lease as flanneld writes it, parsed into a :class:`Lease` (spec §3)."""

from collections.abc import Callable
from ipaddress import (
    IPv4Interface,
    IPv4Network,
    IPv6Interface,
    IPv6Network,
    ip_interface,
    ip_network,
)
from typing import Final, NamedTuple, TypeVar

from returns.result import Failure, Result, Success

from core.errors import CniError, Code


class Lease(NamedTuple):
    """The subnet flanneld leased to this node, and how it wants it used."""

    networks4: tuple[IPv4Network, ...]
    subnet4: IPv4Interface | None
    networks6: tuple[IPv6Network, ...]
    subnet6: IPv6Interface | None
    mtu: int
    ipmasq: bool


class _Malformed(ValueError):
    """A value that does not have its key's form; the message says which form."""


N = TypeVar("N", IPv4Network, IPv6Network)
A = TypeVar("A", IPv4Interface, IPv6Interface)


def _networks(family: int, kind: type[N]) -> Callable[[str], tuple[N, ...]]:
    def parse(value: str) -> tuple[N, ...]:
        found: list[N] = []
        for item in value.split(","):
            try:
                network = ip_network(item.strip(), strict=False)
            except ValueError:
                raise _Malformed(f"a comma-separated list of IPv{family} CIDRs") from None
            if not isinstance(network, kind):
                raise _Malformed(f"a comma-separated list of IPv{family} CIDRs")
            if network not in found:  # duplicates dropped, order kept
                found.append(network)
        return tuple(found)

    return parse


def _subnet(family: int, kind: type[A]) -> Callable[[str], A]:
    def parse(value: str) -> A:
        try:
            address = ip_interface(value)
        except ValueError:
            raise _Malformed(f"an IPv{family} address with prefix length") from None
        if not isinstance(address, kind) or "/" not in value:
            raise _Malformed(f"an IPv{family} address with prefix length")
        return address

    return parse


def _mtu(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) > 0xFFFFFFFF:
        raise _Malformed("an unsigned integer")
    return int(value)


def _ipmasq(value: str) -> bool:
    return value == "true"


_KNOWN_KEYS: Final = (
    "FLANNEL_NETWORK",
    "FLANNEL_SUBNET",
    "FLANNEL_IPV6_NETWORK",
    "FLANNEL_IPV6_SUBNET",
    "FLANNEL_MTU",
    "FLANNEL_IPMASQ",
)

# Each group needs at least one of its keys.
_REQUIRED: Final = (
    ("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"),
    ("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"),
    ("FLANNEL_MTU",),
    ("FLANNEL_IPMASQ",),
)

T = TypeVar("T")


class _BadLine(Exception):
    def __init__(self, error: CniError) -> None:
        super().__init__(error.msg)
        self.error = error


def parse_subnet_env(data: bytes, source: str) -> Result[Lease, CniError]:
    """Parse subnet.env bytes read from ``source`` (named in messages).

    A malformed line or value is error 6, naming key and line. Missing keys
    are error 11: flanneld has not written its lease yet, a normal state at
    node boot.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Failure(
            CniError(Code.DECODE_FAILURE, f"{source} is not UTF-8 text (byte {exc.start})")
        )
    lines: dict[str, tuple[int, str]] = {}  # key -> (line number, value); last wins
    # Only "\n" ends a line (CRLF leaves a "\r" that strip() removes); splitlines()
    # would also split inside a comment at form feeds, NEL or U+2028.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if line == "" or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key == "":
            return Failure(
                CniError(
                    Code.DECODE_FAILURE,
                    f"{source} line {number} is not KEY=VALUE: {raw!r}",
                )
            )
        if key in _KNOWN_KEYS:  # unknown keys are ignored
            lines[key] = (number, value.strip())

    def field(key: str, parse: Callable[[str], T], default: T) -> T:
        if key not in lines:
            return default
        number, value = lines[key]
        try:
            return parse(value)
        except _Malformed as exc:
            raise _BadLine(
                CniError(
                    Code.DECODE_FAILURE,
                    f"{source} line {number}: {key} must be {exc}, got {value!r}",
                )
            ) from None

    try:
        lease = Lease(
            networks4=field("FLANNEL_NETWORK", _networks(4, IPv4Network), ()),
            subnet4=field("FLANNEL_SUBNET", _subnet(4, IPv4Interface), None),
            networks6=field("FLANNEL_IPV6_NETWORK", _networks(6, IPv6Network), ()),
            subnet6=field("FLANNEL_IPV6_SUBNET", _subnet(6, IPv6Interface), None),
            mtu=field("FLANNEL_MTU", _mtu, 0),
            ipmasq=field("FLANNEL_IPMASQ", _ipmasq, False),
        )
    except _BadLine as bad:
        return Failure(bad.error)
    missing = [" or ".join(group) for group in _REQUIRED if not any(k in lines for k in group)]
    if missing:
        return Failure(
            CniError(
                Code.TRY_AGAIN_LATER,
                f"{source} is incomplete, missing {', '.join(missing)}:"
                " flanneld has not written the node's lease yet",
            )
        )
    return Success(lease)
