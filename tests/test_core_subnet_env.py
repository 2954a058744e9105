"""subnet.env parsing (spec §3): vectors as a table, then properties."""

from __future__ import annotations

import re
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from core.errors import CniError
from core.subnet_env import Lease, parse_subnet_env
from tests.strategies import MALFORMED_VALUES, SubnetEnvCase, subnet_env_cases

SOURCE = "/run/flannel/subnet.env"

# Spec §1, verbatim.
SPEC_DUAL = (
    "FLANNEL_NETWORK=10.244.0.0/16\n"
    "FLANNEL_SUBNET=10.244.7.1/24\n"
    "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\n"
    "FLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n"
    "FLANNEL_MTU=1450\n"
    "FLANNEL_IPMASQ=true\n"
)
V4_LINES = (
    "FLANNEL_NETWORK=10.244.0.0/16",
    "FLANNEL_SUBNET=10.244.7.1/24",
    "FLANNEL_MTU=1450",
    "FLANNEL_IPMASQ=true",
)
SPEC_V4 = "\n".join(V4_LINES) + "\n"

NET4 = (IPv4Network("10.244.0.0/16"),)
SUB4 = IPv4Interface("10.244.7.1/24")
NET6 = (IPv6Network("fd00:10:244::/56"),)
SUB6 = IPv6Interface("fd00:10:244:7::1/64")
V4_LEASE = Lease(NET4, SUB4, (), None, 1450, True)
DUAL_LEASE = Lease(NET4, SUB4, NET6, SUB6, 1450, True)
V6_LEASE = Lease((), None, NET6, SUB6, 1450, True)


def _parse(text: str | bytes) -> Result[Lease, CniError]:
    return parse_subnet_env(text.encode() if isinstance(text, str) else text, SOURCE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(SPEC_DUAL, DUAL_LEASE, id="spec-section-1-dual-stack"),
        pytest.param(SPEC_V4, V4_LEASE, id="ipv4-only"),
        pytest.param(
            "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n"
            "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
            V6_LEASE,
            id="ipv6-only",
        ),
        pytest.param(SPEC_DUAL.replace("\n", "\r\n"), DUAL_LEASE, id="crlf"),
        pytest.param(SPEC_V4.rstrip("\n"), V4_LEASE, id="no-final-newline"),
        pytest.param(
            "# written by flanneld\n\n   \n" + SPEC_V4.replace("\n", "\n# comment\n\n"),
            V4_LEASE,
            id="comments-and-blank-lines",
        ),
        pytest.param(
            "\n".join(f"  \t{line} \t" for line in V4_LINES) + "\n",
            V4_LEASE,
            id="surrounding-whitespace",
        ),
        pytest.param(
            "FLANNEL_BACKEND=vxlan\nSOMETHING_ELSE=\nflannel_mtu=9\n" + SPEC_V4,
            V4_LEASE,
            id="unknown-keys-ignored",
        ),
        pytest.param(
            SPEC_V4.replace(
                "FLANNEL_NETWORK=10.244.0.0/16",
                "FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16,10.244.0.0/16,10.246.0.0/16,10.245.0.0/16",
            ),
            Lease(
                (
                    IPv4Network("10.244.0.0/16"),
                    IPv4Network("10.245.0.0/16"),
                    IPv4Network("10.246.0.0/16"),
                ),
                SUB4,
                (),
                None,
                1450,
                True,
            ),
            id="duplicate-networks-dropped-order-kept",
        ),
        pytest.param(
            SPEC_DUAL.replace(
                "FLANNEL_IPV6_NETWORK=fd00:10:244::/56",
                "FLANNEL_IPV6_NETWORK=fd00:10:245::/56,fd00:10:244::/56,fd00:10:245::/56",
            ),
            Lease(
                NET4,
                SUB4,
                (IPv6Network("fd00:10:245::/56"), IPv6Network("fd00:10:244::/56")),
                SUB6,
                1450,
                True,
            ),
            id="duplicate-ipv6-networks-dropped-order-kept",
        ),
        pytest.param(
            SPEC_V4.replace("FLANNEL_IPMASQ=true", "FLANNEL_IPMASQ=false"),
            Lease(NET4, SUB4, (), None, 1450, False),
            id="ipmasq-false",
        ),
        pytest.param(
            SPEC_V4.replace("FLANNEL_IPMASQ=true", "FLANNEL_IPMASQ=yes"),
            Lease(NET4, SUB4, (), None, 1450, False),
            id="ipmasq-anything-but-true-is-false",
        ),
        pytest.param(
            SPEC_V4.replace("FLANNEL_MTU=1450", "FLANNEL_MTU=8951"),
            Lease(NET4, SUB4, (), None, 8951, True),
            id="mtu-jumbo",
        ),
    ],
)
def test_valid_subnet_env_vectors(text: str, expected: Lease) -> None:
    result = _parse(text)
    assert result == Success(expected)


@pytest.mark.parametrize(
    "separator",
    ["\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\u2029"],
    ids=["form-feed", "vertical-tab", "file-separator", "nel", "u2028", "u2029"],
)
def test_comment_text_never_ends_a_line(separator: str) -> None:
    # Spec §3: one KEY=VALUE per *line*, '#' comments tolerated. Only "\n" (or "\r\n")
    # ends a line, as flanneld and the Go plugin see it; whatever a comment holds, it
    # stays a comment.
    text = f"# written by flanneld{separator}on node-7\n" + SPEC_V4
    assert _parse(text) == Success(V4_LEASE)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        pytest.param(
            "",
            ["FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"],
            id="empty-file",
        ),
        pytest.param(
            "# flanneld starting\n\n", ["FLANNEL_NETWORK", "FLANNEL_MTU"], id="only-comments"
        ),
        pytest.param(
            "\n".join(V4_LINES[1:]),
            ["FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"],
            id="no-network-either-family",
        ),
        pytest.param(
            "\n".join(line for line in V4_LINES if "SUBNET" not in line),
            ["FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"],
            id="no-subnet-either-family",
        ),
        pytest.param("\n".join(V4_LINES[:2] + V4_LINES[3:]), ["FLANNEL_MTU"], id="no-mtu"),
        pytest.param("\n".join(V4_LINES[:3]), ["FLANNEL_IPMASQ"], id="no-ipmasq"),
        pytest.param(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n",
            ["FLANNEL_MTU", "FLANNEL_IPMASQ"],
            id="two-missing-both-named",
        ),
        pytest.param(
            "FLANNEL_MTU=1450\r\n",
            ["FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_IPMASQ"],
            id="three-missing-all-named",
        ),
    ],
)
def test_missing_keys_are_error_11_naming_every_one(text: str, missing: list[str]) -> None:
    result = _parse(text)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 11
    for key in missing:
        assert re.search(rf"\b{key}\b", error.msg), (key, error.msg)


def test_missing_key_of_one_family_is_fine_when_the_other_has_it() -> None:
    text = SPEC_DUAL.replace("FLANNEL_NETWORK=10.244.0.0/16\n", "").replace(
        "FLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n", ""
    )
    assert _parse(text) == Success(Lease((), SUB4, NET6, None, 1450, True))


@pytest.mark.parametrize(
    ("key", "value"), MALFORMED_VALUES, ids=[f"{k}={v!r}" for k, v in MALFORMED_VALUES]
)
def test_malformed_value_is_error_6_naming_key_and_line(key: str, value: str) -> None:
    lines = ["# subnet.env", "", *SPEC_DUAL.splitlines()]
    index = next(i for i, line in enumerate(lines) if line.startswith(key + "="))
    lines[index] = f"{key}={value}"
    result = _parse("\n".join(lines) + "\n")
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 6
    text = error.msg + " " + error.details
    assert re.search(rf"\b{key}\b", text), text
    assert re.search(rf"\bline {index + 1}\b", text), text


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(SPEC_V4 + "garbage\n", 5, id="no-equals-sign"),
        pytest.param("# c\n=10\n" + SPEC_V4, 2, id="empty-key"),
        pytest.param(SPEC_V4.replace("\n", "\r\n") + "FLANNEL_MTU\r\n", 5, id="crlf-key-only"),
    ],
)
def test_line_that_is_not_key_value_is_error_6_naming_line(text: str, line: int) -> None:
    result = _parse(text)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 6
    assert re.search(rf"\bline {line}\b", error.msg + " " + error.details)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xfe" + SPEC_V4.encode(), id="bom-like-bytes"),
        pytest.param(SPEC_V4.encode() + b"# caf\xe9\n", id="latin-1-comment"),
        pytest.param(SPEC_V4.encode().replace(b"1450", b"14\x8050"), id="bad-continuation-byte"),
    ],
)
def test_non_utf8_is_error_6(data: bytes) -> None:
    result = _parse(data)
    assert isinstance(result, Failure)
    assert result.failure().code == 6


def test_error_names_the_source_file() -> None:
    result = parse_subnet_env(b"FLANNEL_MTU=x\n", "/custom/subnet.env")
    assert isinstance(result, Failure)
    assert "/custom/subnet.env" in result.failure().msg


# ---------------------------------------------------------------- properties


def _expected(case: SubnetEnvCase) -> Lease:
    return Lease(
        networks4=case.networks4,
        subnet4=case.subnet4,
        networks6=case.networks6,
        subnet6=case.subnet6,
        mtu=case.mtu,
        ipmasq=case.ipmasq,
    )


@settings(max_examples=300)
@given(subnet_env_cases())
def test_every_valid_subnet_env_parses_to_the_lease_it_describes(case: SubnetEnvCase) -> None:
    assert parse_subnet_env(case.text, SOURCE) == Success(_expected(case))


@settings(max_examples=200)
@given(
    subnet_env_cases(family="dual"),
    st.sampled_from(MALFORMED_VALUES),
    st.integers(0, 20),
)
def test_a_malformed_value_anywhere_is_error_6_naming_key_and_line(
    case: SubnetEnvCase, bad: tuple[str, str], where: int
) -> None:
    key, value = bad
    # The key appears once, on the malformed line, wherever it lands.
    lines = [
        line
        for line in case.text.decode().replace("\r\n", "\n").split("\n")
        if line.strip().partition("=")[0].strip() != key
    ]
    at = where % (len(lines) + 1)
    lines.insert(at, f"{key}={value}")
    result = parse_subnet_env("\n".join(lines).encode(), SOURCE)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 6
    assert re.search(rf"\b{key}\b", error.msg), error.msg
    assert re.search(rf"\bline {at + 1}\b", error.msg), error.msg
