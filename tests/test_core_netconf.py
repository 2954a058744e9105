"""The network configuration on stdin (spec §2 "Versions", §4 input keys and rules)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from core.errors import CniError
from core.netconf import NetConf, parse_netconf
from core.versions import SUPPORTED_VERSIONS, version_answer
from tests.strategies import (
    FIRST_VERSION,
    INVALID_ROUTES,
    NETCONF_COMMANDS,
    SPEC_VERSIONS,
    VALID_ATTACHMENTS,
    JsonObject,
    allowed,
    encode_json,
    invalid_container_ids,
    invalid_ifnames,
    netconfs,
    routes,
)

KUBE_FLANNEL: JsonObject = {
    "cniVersion": "1.1.0",
    "name": "cbr0",
    "type": "flannel",
    "delegate": {"hairpinMode": True, "isDefaultGateway": True},
}


def conf(command: str = "ADD", /, **changes: Any) -> JsonObject:
    """The kube-flannel config (version valid for every command) with ``changes``."""
    base: JsonObject = {**KUBE_FLANNEL, **changes}
    if command == "GC" and VALID_ATTACHMENTS not in base:
        base[VALID_ATTACHMENTS] = []
    return base


def parse(value: JsonObject | bytes, command: str = "ADD") -> Result[NetConf, CniError]:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return parse_netconf(data, command)


def error_code(value: JsonObject | bytes, command: str = "ADD") -> int:
    result = parse(value, command)
    assert isinstance(result, Failure), result
    code = result.failure().code
    assert isinstance(code, int)
    return code


def error_text(value: JsonObject | bytes, command: str = "ADD") -> str:
    result = parse(value, command)
    assert isinstance(result, Failure), result
    error: CniError = result.failure()
    return error.msg + " " + error.details


# ---------------------------------------------------------------- decoding (error 6)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n", id="blank"),
        pytest.param(b"{", id="unterminated"),
        pytest.param(b"not json", id="words"),
        pytest.param(b'{"name": "cbr0",}', id="trailing-comma"),
        pytest.param(b"{'name': 'cbr0'}", id="single-quotes"),
        pytest.param(b'{"name": "cbr0"} {}', id="two-documents"),
        pytest.param(b'{"name": "caf\xe9"}', id="latin-1"),
        pytest.param(b"\xff\xfe{}", id="utf-16-bom"),
        pytest.param(b'{"name": "cbr0", "type": "flannel"', id="truncated"),
    ],
)
@pytest.mark.parametrize("command", NETCONF_COMMANDS)
def test_undecodable_input_is_error_6(data: bytes, command: str) -> None:
    assert error_code(data, command) == 6


@pytest.mark.parametrize("data", [b"[]", b"null", b"42", b'"cbr0"', b"true", b"[{}]", b"1.5"])
@pytest.mark.parametrize("command", NETCONF_COMMANDS)
def test_input_that_is_not_an_object_is_error_6(data: bytes, command: str) -> None:
    assert error_code(data, command) == 6


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["top", "delegate", "ipam", "runtimeConfig"])
def test_nan_and_infinity_are_rejected(constant: str, where: str) -> None:
    text = json.dumps(conf()).rstrip("}")
    if where == "top":
        data = f'{text}, "x": {constant}}}'
    else:
        data = f'{text}, "{where}": {{"x": [1, {constant}]}}}}'
    assert error_code(data.encode()) == 6


def test_a_number_overflowing_to_infinity_never_becomes_infinity() -> None:
    # 1e400 is JSON syntax for a number no float holds; decoding makes it inf, which
    # is NaN/Infinity in disguise: encode() then writes `Infinity`, which is not JSON,
    # into the record and onto the delegate's stdin. Reject it like Infinity (6).
    result = parse(b'{"name": "cbr0", "type": "flannel", "delegate": {"x": 1e400}}')
    if isinstance(result, Success):
        value = result.unwrap().delegate["x"]
        assert not (isinstance(value, float) and math.isinf(value)), value
    else:
        assert result.failure().code == 6


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="arrays"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="objects"),
        pytest.param(
            b'{"name":"cbr0","type":"flannel","delegate":{"x":' + b"[" * 20_000 + b"]" * 20_000,
            id="inside-delegate-truncated",
        ),
        pytest.param(b"[" * 100_000, id="unterminated"),
    ],
)
@pytest.mark.parametrize("command", ["ADD", "GC"])
def test_deep_nesting_is_a_failure_not_an_exception(data: bytes, command: str) -> None:
    assert error_code(data, command) == 6


# ---------------------------------------------------------------- versions (error 1)


def test_supported_versions_are_the_spec_list() -> None:
    assert tuple(SUPPORTED_VERSIONS) == SPEC_VERSIONS


@pytest.mark.parametrize("command", ["ADD", "DEL"])
def test_absent_cni_version_means_0_1_0(command: str) -> None:
    value = conf(command)
    del value["cniVersion"]
    result = parse(value, command)
    assert isinstance(result, Success), result
    assert result.unwrap().cni_version == "0.1.0"
    assert result.unwrap().version_given is False


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_given_cni_version_is_kept(version: str) -> None:
    result = parse(conf(cniVersion=version))
    assert isinstance(result, Success), result
    assert result.unwrap().cni_version == version
    assert result.unwrap().version_given is True


@pytest.mark.parametrize("version", ["0.5.0", "2.0.0", "1.1", "1.0", "v1.0.0", "", "1.1.0 ", "0.3"])
@pytest.mark.parametrize("command", NETCONF_COMMANDS)
def test_unsupported_version_is_error_1_listing_supported(version: str, command: str) -> None:
    result = parse(conf(command, cniVersion=version), command)
    assert isinstance(result, Failure), result
    error = result.failure()
    assert error.code == 1
    for supported in SPEC_VERSIONS:
        assert supported in error.details, error.details


@pytest.mark.parametrize("version", [42, 1.1, None, ["1.0.0"], {"v": "1.0.0"}, True])
def test_non_string_cni_version_is_an_error(version: object) -> None:
    assert error_code(conf(cniVersion=version)) in (1, 7)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("command", NETCONF_COMMANDS)
def test_command_against_every_supported_version(command: str, version: str) -> None:
    # CHECK exists from 0.4.0, STATUS and GC from 1.1.0: asked of an older config they
    # are error 1, not a silent success; every other pair is accepted.
    result = parse(conf(command, cniVersion=version), command)
    if allowed(command, version):
        assert isinstance(result, Success), result
        assert result.unwrap().cni_version == version
    else:
        assert isinstance(result, Failure), result
        error = result.failure()
        assert error.code == 1
        assert FIRST_VERSION[command] in error.msg + error.details
        for supported in SPEC_VERSIONS:
            assert supported in error.details


@pytest.mark.parametrize("command", list(FIRST_VERSION))
def test_command_without_cni_version_is_error_1(command: str) -> None:
    value = conf(command)
    del value["cniVersion"]
    assert error_code(value, command) == 1


@pytest.mark.parametrize(
    ("requested", "answered"),
    [(v, v) for v in SPEC_VERSIONS] + [(None, "1.1.0"), ("0.5.0", "1.1.0"), ("", "1.1.0")],
)
def test_version_answer_is_the_inputs_version_or_the_latest(
    requested: str | None, answered: str
) -> None:
    assert version_answer(requested) == {
        "cniVersion": answered,
        "supportedVersions": list(SPEC_VERSIONS),
    }


# ---------------------------------------------------------------- name and type (error 7)


@pytest.mark.parametrize("name", ["cbr0", "a", "0", "k8s-pod-network", "my_net.v2", "N" * 200])
def test_valid_network_names(name: str) -> None:
    result = parse(conf(name=name))
    assert isinstance(result, Success), result
    assert result.unwrap().name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-net",
        "_net",
        ".net",
        "../x",
        "a/b",
        "a b",
        "a:b",
        "caf\u00e9",
        42,
        None,
        ["cbr0"],
        True,
    ],
)
def test_invalid_network_name_is_error_7(name: object) -> None:
    assert error_code(conf(name=name)) == 7


def test_missing_network_name_is_error_7() -> None:
    value = conf()
    del value["name"]
    assert error_code(value) == 7


@settings(max_examples=100)
@given(invalid_container_ids())
def test_no_name_breaking_the_id_rule_is_accepted(name: str) -> None:
    assert error_code(conf(name=name)) == 7


@pytest.mark.parametrize(
    "plugin_type", ["/opt/cni/bin/flannel", "../flannel", "a/b", "flannel/", "/", "", 42, None]
)
def test_bad_own_type_is_error_7(plugin_type: object) -> None:
    assert error_code(conf(type=plugin_type)) == 7


def test_missing_own_type_is_error_7() -> None:
    value = conf()
    del value["type"]
    assert error_code(value) == 7


# ---------------------------------------------------------------- delegate (error 7)


@pytest.mark.parametrize("delegate", [[], "bridge", 42, True, [{"type": "bridge"}]])
def test_delegate_that_is_not_an_object_is_error_7(delegate: object) -> None:
    assert error_code(conf(delegate=delegate)) == 7


@pytest.mark.parametrize("key", ["name", "ipam"])
@pytest.mark.parametrize("value", ["x", {}, None])
def test_delegate_with_name_or_ipam_is_error_7_saying_which(key: str, value: object) -> None:
    delegate = {"type": "bridge", key: value}
    assert error_code(conf(delegate=delegate)) == 7
    assert key in error_text(conf(delegate=delegate))


@pytest.mark.parametrize(
    "delegate_type", ["/usr/bin/bridge", "../bridge", "a/b", "", ".", "..", 42, ["bridge"], {}]
)
def test_bad_delegate_type_is_error_7(delegate_type: object) -> None:
    assert error_code(conf(delegate={"type": delegate_type})) == 7


def test_null_delegate_type_is_not_a_type() -> None:
    # Spec §4: the delegate's type, when present, must be a string. A null type must not
    # slip through to a rendering whose type is null (which no runtime can execute and
    # which decode_record then refuses to replay).
    assert error_code(conf(delegate={"type": None, "hairpinMode": True})) == 7


def test_delegate_type_equal_to_own_type_is_error_7() -> None:
    assert error_code(conf(delegate={"type": "flannel"})) == 7
    assert error_code(conf(type="myflannel", delegate={"type": "myflannel"})) == 7


@pytest.mark.parametrize("delegate_type", ["bridge", "macvlan", "ipvlan", "ptp", "my-plugin"])
def test_delegate_type_is_kept(delegate_type: str) -> None:
    result = parse(conf(delegate={"type": delegate_type}))
    assert isinstance(result, Success), result
    assert result.unwrap().delegate == {"type": delegate_type}


def test_absent_delegate_is_empty() -> None:
    value = conf()
    del value["delegate"]
    result = parse(value)
    assert isinstance(result, Success)
    assert result.unwrap().delegate == {}


# ---------------------------------------------------------------- ipam (error 7)


@pytest.mark.parametrize("ipam", [[], "host-local", 42, True])
def test_ipam_that_is_not_an_object_is_error_7(ipam: object) -> None:
    assert error_code(conf(ipam=ipam)) == 7


@pytest.mark.parametrize("ipam_type", ["/opt/cni/bin/host-local", "../host-local", "", 42])
def test_bad_ipam_type_is_error_7(ipam_type: object) -> None:
    assert error_code(conf(ipam={"type": ipam_type})) == 7


@pytest.mark.parametrize("routes_value", ["0.0.0.0/0", {"dst": "0.0.0.0/0"}, 42])
def test_ipam_routes_not_an_array_is_error_7(routes_value: object) -> None:
    assert error_code(conf(ipam={"routes": routes_value})) == 7


@pytest.mark.parametrize("route", INVALID_ROUTES, ids=[repr(r) for r in INVALID_ROUTES])
@pytest.mark.parametrize("position", [0, 1])
def test_invalid_route_is_error_7(route: object, position: int) -> None:
    good = {"dst": "192.168.0.0/16"}
    given_routes = [route, good] if position == 0 else [good, route]
    assert error_code(conf(ipam={"routes": given_routes})) == 7


@pytest.mark.parametrize(
    "route",
    [
        {"dst": "0.0.0.0/0"},
        {"dst": "192.168.0.0/16", "gw": "10.244.7.1"},
        {"dst": "::/0"},
        {"dst": "fd00:1::/64", "gw": "fd00:10:244:7::1"},
    ],
)
def test_valid_route_is_kept(route: JsonObject) -> None:
    result = parse(conf(ipam={"type": "host-local", "routes": [route]}))
    assert isinstance(result, Success), result
    assert result.unwrap().ipam == {"type": "host-local", "routes": [route]}


@settings(max_examples=100)
@given(st.lists(routes(), max_size=5))
def test_every_valid_route_list_is_accepted(route_list: list[JsonObject]) -> None:
    result = parse(conf(ipam={"routes": route_list}))
    assert isinstance(result, Success), result
    assert result.unwrap().ipam["routes"] == route_list


# ---------------------------------------------------------------- paths and objects


@pytest.mark.parametrize("key", ["subnetFile", "dataDir"])
@pytest.mark.parametrize(
    "value", ["run/flannel/subnet.env", "./x", "", "~/x", "subnet.env", 42, ["/x"]]
)
def test_subnet_file_and_data_dir_must_be_absolute(key: str, value: object) -> None:
    assert error_code(conf(**{key: value})) == 7


def test_paths_default_per_spec() -> None:
    result = parse(conf())
    assert isinstance(result, Success)
    assert result.unwrap().subnet_file == "/run/flannel/subnet.env"
    assert result.unwrap().data_dir == "/var/lib/cni/flannel"


def test_paths_given_are_kept() -> None:
    result = parse(conf(subnetFile="/etc/flannel/s.env", dataDir="/var/lib/x"))
    assert isinstance(result, Success)
    assert (result.unwrap().subnet_file, result.unwrap().data_dir) == (
        "/etc/flannel/s.env",
        "/var/lib/x",
    )


@pytest.mark.parametrize("key", ["runtimeConfig", "prevResult"])
@pytest.mark.parametrize("value", [[], "x", 1, True, [{"portMappings": []}]])
def test_runtime_config_and_prev_result_must_be_objects(key: str, value: object) -> None:
    assert error_code(conf(**{key: value})) == 7


def test_runtime_config_and_prev_result_are_kept() -> None:
    runtime = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    prev = {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0"}], "ips": []}
    result = parse(conf(runtimeConfig=runtime, prevResult=prev))
    assert isinstance(result, Success)
    assert result.unwrap().runtime_config == runtime
    assert result.unwrap().prev_result == prev


def test_unknown_keys_are_ignored() -> None:
    result = parse(
        conf(capabilities={"portMappings": True}, args={"cni": {}}, foo=[1, 2], bar=None)
    )
    assert isinstance(result, Success), result
    assert result.unwrap().name == "cbr0"


def test_kube_flannel_conflist_entry_is_accepted_as_is() -> None:
    entry = {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}}
    # libcni inserts the list's name and cniVersion into each plugin's config.
    result = parse({"name": "cbr0", "cniVersion": "0.3.1", **entry})
    assert isinstance(result, Success), result
    assert result.unwrap().delegate == entry["delegate"]


# ---------------------------------------------------------------- GC


def test_gc_requires_valid_attachments() -> None:
    value = conf("GC")
    del value[VALID_ATTACHMENTS]
    assert error_code(value, "GC") == 7
    assert VALID_ATTACHMENTS in error_text(value, "GC")


def test_gc_valid_attachments_are_read() -> None:
    value = conf(
        "GC",
        **{
            VALID_ATTACHMENTS: [
                {"containerID": "c1", "ifname": "eth0"},
                {"containerID": "c1", "ifname": "net1"},
                {"containerID": "c2", "ifname": "eth0"},
                {"containerID": "c2", "ifname": "eth0"},
            ]
        },
    )
    result = parse(value, "GC")
    assert isinstance(result, Success), result
    assert result.unwrap().valid_attachments == frozenset(
        {("c1", "eth0"), ("c1", "net1"), ("c2", "eth0")}
    )


def test_gc_with_empty_list_is_accepted() -> None:
    result = parse(conf("GC"), "GC")
    assert isinstance(result, Success), result
    assert result.unwrap().valid_attachments == frozenset()


@pytest.mark.parametrize(
    "items",
    [
        pytest.param({}, id="object"),
        pytest.param("c1/eth0", id="string"),
        pytest.param(None, id="null"),
        pytest.param(["c1"], id="string-entry"),
        pytest.param([{"containerID": "c1"}], id="no-ifname"),
        pytest.param([{"ifname": "eth0"}], id="no-container-id"),
        pytest.param([{"containerID": "../../etc/x", "ifname": "eth0"}], id="traversal-id"),
        pytest.param([{"containerID": "c1", "ifname": "a/b"}], id="slash-ifname"),
        pytest.param([{"containerID": "c1", "ifname": "x" * 16}], id="long-ifname"),
        pytest.param([{"containerID": 1, "ifname": "eth0"}], id="number-id"),
        pytest.param([{"containerID": "c1", "ifname": ""}], id="empty-ifname"),
        pytest.param([{"containerID": "c1", "ifname": "eth0"}, 7], id="one-good-one-bad"),
    ],
)
def test_gc_valid_attachments_entries_are_validated(items: object) -> None:
    assert error_code(conf("GC", **{VALID_ATTACHMENTS: items}), "GC") == 7


@pytest.mark.parametrize("ifname", ["\\ud800", "eth\\udfff"], ids=["d800", "eth-dfff"])
def test_gc_ifname_with_lone_surrogate_is_error_7_not_an_exception(ifname: str) -> None:
    # JSON escapes can spell a lone surrogate; stdin is untrusted input (core/__init__:
    # Failure for bad input, never an exception).
    data = (
        '{"cniVersion": "1.1.0", "name": "cbr0", "type": "flannel",'
        f' "{VALID_ATTACHMENTS}": [{{"containerID": "c1", "ifname": "{ifname}"}}]}}'
    ).encode()
    assert error_code(data, "GC") == 7


@settings(max_examples=100)
@given(
    st.one_of(
        invalid_container_ids().map(lambda c: (c, "eth0")),
        invalid_ifnames().map(lambda i: ("c1", i)),
    )
)
def test_gc_rejects_every_invalid_attachment(pair: tuple[str, str]) -> None:
    cid, ifname = pair
    value = conf("GC", **{VALID_ATTACHMENTS: [{"containerID": cid, "ifname": ifname}]})
    assert error_code(value, "GC") == 7


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS"])
def test_valid_attachments_matter_only_to_gc(command: str) -> None:
    value = conf(command, **{VALID_ATTACHMENTS: "junk"})
    result = parse(value, command)
    assert isinstance(result, Success), result
    assert result.unwrap().valid_attachments == frozenset()


# ---------------------------------------------------------------- properties


@settings(max_examples=150)
@given(st.sampled_from(NETCONF_COMMANDS).flatmap(lambda c: st.tuples(st.just(c), netconfs(c))))
def test_every_valid_config_parses_to_what_it_says(case: tuple[str, JsonObject]) -> None:
    command, value = case
    result = parse_netconf(encode_json(value), command)
    assert isinstance(result, Success), result
    got = result.unwrap()
    assert got.name == value["name"]
    assert got.type == "flannel"
    assert got.cni_version == value.get("cniVersion", "0.1.0")
    assert got.version_given == ("cniVersion" in value)
    assert got.delegate == value.get("delegate", {})
    assert got.ipam == value.get("ipam", {})
    assert got.runtime_config == value.get("runtimeConfig")
    assert got.prev_result == value.get("prevResult")
    assert got.subnet_file == value.get("subnetFile", "/run/flannel/subnet.env")
    assert got.data_dir == value.get("dataDir", "/var/lib/cni/flannel")
    expected_pairs = {(a["containerID"], a["ifname"]) for a in value.get(VALID_ATTACHMENTS, [])}
    assert got.valid_attachments == frozenset(expected_pairs if command == "GC" else ())
