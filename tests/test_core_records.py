"""The state store's records as values (spec §5, §6): names, decoding, replay, drift."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Interface, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from core.drift import check_drift, record_subnets
from core.netconf import parse_netconf
from core.records import (
    TEMP_PREFIX,
    RecordName,
    decode_record,
    is_stale,
    legacy_record_name,
    parse_record_name,
    record_name,
    with_prev_result,
)
from core.render import render_delegate
from core.subnet_env import Lease, parse_subnet_env
from tests.strategies import (
    JsonObject,
    SubnetEnvCase,
    container_ids,
    encode_json,
    ifnames,
    json_objects,
    netconfs,
    subnet_env_cases,
    v4_subnets,
)

ENV_V4 = (
    b"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n"
    b"FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
)
ENV_DUAL = ENV_V4 + (
    b"FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n"
)
LEASE_V4 = parse_subnet_env(ENV_V4, "subnet.env").unwrap()
LEASE_DUAL = parse_subnet_env(ENV_DUAL, "subnet.env").unwrap()
LEASE_MOVED = LEASE_V4._replace(subnet4=IPv4Interface("10.244.9.1/24"))

# What the Go plugin stored (bare delegate config) in its two ipam layouts.
GO_RECORD_RANGES: JsonObject = {
    "cniVersion": "0.3.1",
    "name": "cbr0",
    "type": "bridge",
    "hairpinMode": True,
    "ipMasq": False,
    "isGateway": True,
    "mtu": 1450,
    "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.7.0/24"}]],
        "routes": [{"dst": "10.244.0.0/16"}],
    },
}
GO_RECORD_SUBNET: JsonObject = {
    "name": "cbr0",
    "type": "bridge",
    "ipam": {"type": "host-local", "subnet": "10.244.7.0/24", "routes": [{"dst": "10.244.0.0/16"}]},
}

SMALL_IDS = st.text(alphabet="ab.-", max_size=3).map(lambda s: "a" + s)
SMALL_IFNAMES = st.text(alphabet="ab.", min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..")
)


# ---------------------------------------------------------------- names


@settings(max_examples=300)
@given(container_ids(), ifnames())
def test_record_name_round_trips(container_id: str, ifname: str) -> None:
    name = record_name(container_id, ifname)
    assert parse_record_name(name) == RecordName(name, container_id, ifname)


@settings(max_examples=300)
@given(st.tuples(SMALL_IDS, SMALL_IFNAMES), st.tuples(SMALL_IDS, SMALL_IFNAMES))
def test_distinct_attachments_get_distinct_record_names(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    # Small alphabets so that near-collisions ("a.", "b" vs "a", ".b") come up often.
    if first != second:
        assert record_name(*first) != record_name(*second)
    else:
        assert record_name(*first) == record_name(*second)


def test_two_interfaces_of_one_container_get_two_records() -> None:
    assert record_name("c0ffee", "eth0") != record_name("c0ffee", "net1")
    assert record_name("c0", "ffee") != record_name("c0f", "fee")


@settings(max_examples=300)
@given(container_ids(), ifnames(), container_ids())
def test_a_record_name_never_equals_a_legacy_name(
    container_id: str, ifname: str, other_id: str
) -> None:
    assert record_name(container_id, ifname) != legacy_record_name(other_id)
    assert record_name(container_id, ifname) != legacy_record_name(container_id)


@settings(max_examples=200)
@given(container_ids())
def test_legacy_names_parse_with_ifname_none(container_id: str) -> None:
    # A Go-plugin record is named after the container ID alone (spec §5).
    assert legacy_record_name(container_id) == container_id
    assert parse_record_name(container_id) == RecordName(container_id, container_id, None)


@settings(max_examples=200)
@given(container_ids(), ifnames(), st.text(max_size=20))
def test_temp_names_never_parse_and_never_collide(
    container_id: str, ifname: str, suffix: str
) -> None:
    assert parse_record_name(TEMP_PREFIX + suffix) is None
    assert not record_name(container_id, ifname).startswith(TEMP_PREFIX)
    assert not legacy_record_name(container_id).startswith(TEMP_PREFIX)


@pytest.mark.parametrize(
    "file",
    [
        "",
        ".",
        "..",
        ":eth0",
        "c1:",
        "c1:eth0:1",
        "c1:a/b",
        "c1:" + "x" * 16,
        "c1:.",
        "c1:..",
        "c1:eth 0",
        "../c1",
        "-c1",
        "_c1:eth0",
        "lost+found",
        ".lock",
        TEMP_PREFIX + "c1:eth0",
        TEMP_PREFIX,
        "caf\u00e9",
    ],
)
def test_junk_does_not_parse(file: str) -> None:
    assert parse_record_name(file) is None


# ---------------------------------------------------------------- staleness (GC)

VALID = frozenset({("c1", "eth0"), ("c2", "net1")})


@pytest.mark.parametrize(
    ("file", "stale"),
    [
        ("c1:eth0", False),
        ("c2:net1", False),
        ("c1:net1", True),  # the container lives on, this attachment does not
        ("c2:eth0", True),
        ("c3:eth0", True),
        ("c1", False),  # legacy: any valid attachment of the container keeps it
        ("c2", False),
        ("c3", True),
    ],
)
def test_is_stale(file: str, stale: bool) -> None:
    name = parse_record_name(file)
    assert name is not None
    assert is_stale(name, VALID) is stale


@settings(max_examples=200)
@given(
    st.lists(st.tuples(SMALL_IDS, SMALL_IFNAMES), max_size=5).map(frozenset),
    st.tuples(SMALL_IDS, SMALL_IFNAMES),
)
def test_is_stale_matches_the_valid_list(
    valid: frozenset[tuple[str, str]], attachment: tuple[str, str]
) -> None:
    ours = parse_record_name(record_name(*attachment))
    legacy = parse_record_name(legacy_record_name(attachment[0]))
    assert ours is not None
    assert legacy is not None
    assert is_stale(ours, valid) is (attachment not in valid)
    assert is_stale(legacy, valid) is all(cid != attachment[0] for cid, _ in valid)


def test_everything_is_stale_when_nothing_is_valid() -> None:
    for file in ("c1:eth0", "c1"):
        name = parse_record_name(file)
        assert name is not None
        assert is_stale(name, frozenset()) is True


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"type": "bridge"', id="truncated"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"bridge"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"{}", id="no-type"),
        pytest.param(b'{"type": ""}', id="empty-type"),
        pytest.param(b'{"type": null}', id="null-type"),
        pytest.param(b'{"type": 42}', id="number-type"),
        pytest.param(b'{"type": "/bin/sh"}', id="path-type"),
        pytest.param(b'{"type": "../bridge"}', id="relative-path-type"),
        pytest.param(b'{"type": "bridge", "mtu": NaN}', id="nan"),
        pytest.param(b"[" * 50_000, id="deep"),
    ],
)
def test_undecodable_record_is_error_6(data: bytes) -> None:
    result = decode_record(data, "c1:eth0")
    assert isinstance(result, Failure)
    assert result.failure().code == 6


def test_decode_error_names_the_record() -> None:
    result = decode_record(b"{", "c0ffee:eth0")
    assert isinstance(result, Failure)
    assert "c0ffee:eth0" in result.failure().msg


@pytest.mark.parametrize("record", [GO_RECORD_RANGES, GO_RECORD_SUBNET])
def test_go_plugin_records_decode_as_they_are(record: JsonObject) -> None:
    assert decode_record(json.dumps(record).encode(), "c1") == Success(record)


# ---------------------------------------------------------------- replay with prevResult

PREV = {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0"}], "ips": []}


def test_with_prev_result_attaches_it_without_touching_the_record() -> None:
    record = copy.deepcopy(GO_RECORD_RANGES)
    replay = with_prev_result(record, PREV)
    assert replay == {**GO_RECORD_RANGES, "prevResult": PREV}
    assert record == GO_RECORD_RANGES
    assert "prevResult" not in record


def test_with_prev_result_none_gives_the_record() -> None:
    record = copy.deepcopy(GO_RECORD_RANGES)
    replay = with_prev_result(record, None)
    assert replay == GO_RECORD_RANGES
    replay["extra"] = 1
    assert record == GO_RECORD_RANGES


@settings(max_examples=200)
@given(json_objects(), st.one_of(st.none(), json_objects()))
def test_with_prev_result_never_mutates_nor_stores_into_the_record(
    record: JsonObject, prev: JsonObject | None
) -> None:
    record.pop("prevResult", None)
    before = copy.deepcopy(record)
    replay = with_prev_result(record, prev)
    assert record == before
    assert "prevResult" not in record
    if prev is None:
        assert replay == before
    else:
        assert replay == {**before, "prevResult": prev}
    replay["added-later"] = True
    assert record == before


# ---------------------------------------------------------------- subnets and drift


@pytest.mark.parametrize(
    ("record", "subnets"),
    [
        pytest.param(GO_RECORD_RANGES, ["10.244.7.0/24"], id="ranges"),
        pytest.param(GO_RECORD_SUBNET, ["10.244.7.0/24"], id="old-subnet-layout"),
        pytest.param(
            {
                "type": "bridge",
                "ipam": {
                    "ranges": [[{"subnet": "10.244.7.0/24"}], [{"subnet": "fd00:10:244:7::/64"}]]
                },
            },
            ["10.244.7.0/24", "fd00:10:244:7::/64"],
            id="dual-ranges",
        ),
        pytest.param(
            {
                "type": "bridge",
                "ipam": {"ranges": [[{"subnet": "10.244.7.0/25"}, {"subnet": "10.244.7.128/25"}]]},
            },
            ["10.244.7.0/25", "10.244.7.128/25"],
            id="two-ranges-in-one-set",
        ),
        pytest.param({"type": "bridge"}, [], id="no-ipam"),
        pytest.param({"type": "bridge", "ipam": "x"}, [], id="ipam-not-object"),
        pytest.param({"type": "bridge", "ipam": {"ranges": "x"}}, [], id="ranges-not-list"),
        pytest.param(
            {"type": "bridge", "ipam": {"ranges": [["x"], [{"subnet": "nope"}], 3]}},
            [],
            id="junk-ranges",
        ),
        pytest.param({"type": "bridge", "ipam": {"type": "dhcp"}}, [], id="dhcp"),
    ],
)
def test_record_subnets(record: JsonObject, subnets: list[str]) -> None:
    assert record_subnets(record) == [ip_network(s) for s in subnets]


@pytest.mark.parametrize("record", [GO_RECORD_RANGES, GO_RECORD_SUBNET])
@pytest.mark.parametrize("lease", [LEASE_V4, LEASE_DUAL])
def test_check_drift_succeeds_while_the_subnet_is_the_nodes(
    record: JsonObject, lease: Lease
) -> None:
    assert check_drift(record, lease) == Success(None)


@pytest.mark.parametrize("record", [GO_RECORD_RANGES, GO_RECORD_SUBNET])
def test_check_drift_is_error_102_when_flanneld_leased_another_subnet(
    record: JsonObject,
) -> None:
    result = check_drift(record, LEASE_MOVED)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 102
    assert "10.244.7.0/24" in error.msg


def test_check_drift_sees_a_moved_ipv6_subnet() -> None:
    record = render_delegate(
        parse_netconf(b'{"name":"cbr0","type":"flannel"}', "ADD").unwrap(), LEASE_DUAL
    )
    moved = parse_subnet_env(
        ENV_DUAL.replace(b"fd00:10:244:7::1/64", b"fd00:10:244:9::1/64"), "subnet.env"
    ).unwrap()
    result = check_drift(record, moved)
    assert isinstance(result, Failure)
    assert result.failure().code == 102
    assert "fd00:10:244:7::/64" in result.failure().msg


def _lease(case: SubnetEnvCase) -> Lease:
    return parse_subnet_env(case.text, "subnet.env").unwrap()


@settings(max_examples=100, deadline=None)
@given(netconfs(), subnet_env_cases(), v4_subnets())
def test_a_fresh_rendering_never_drifts_and_a_moved_subnet_always_does(
    value: JsonObject, case: SubnetEnvCase, other: IPv4Interface
) -> None:
    lease = _lease(case)
    record = render_delegate(parse_netconf(encode_json(value), "ADD").unwrap(), lease)
    assert check_drift(record, lease) == Success(None)
    if lease.subnet4 is not None and other.network != lease.subnet4.network:
        result = check_drift(record, lease._replace(subnet4=other))
        assert isinstance(result, Failure)
        assert result.failure().code == 102
