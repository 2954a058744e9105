"""Rendering of the delegate configuration (spec §4): the table, the example, the invariants."""

from __future__ import annotations

import copy
import json
from ipaddress import ip_network
from typing import Any

import pytest
from hypothesis import given, settings
from returns.result import Failure, Success

from core.jsonvalue import encode
from core.netconf import NetConf, parse_netconf
from core.records import decode_record
from core.render import render_delegate
from core.subnet_env import Lease, parse_subnet_env
from tests.strategies import JsonObject, SubnetEnvCase, encode_json, netconfs, subnet_env_cases

ENV_V4 = (
    "FLANNEL_NETWORK=10.244.0.0/16\n"
    "FLANNEL_SUBNET=10.244.7.1/24\n"
    "FLANNEL_MTU=1450\n"
    "FLANNEL_IPMASQ=true\n"
)
ENV_V6_LINES = "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n"
ENV_DUAL = ENV_V4 + ENV_V6_LINES
ENV_V6 = ENV_V6_LINES + "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"


def lease(text: str = ENV_V4) -> Lease:
    return parse_subnet_env(text.encode(), "subnet.env").unwrap()


def netconf(value: JsonObject, command: str = "ADD") -> NetConf:
    result = parse_netconf(json.dumps(value).encode(), command)
    assert not isinstance(result, Failure), result
    return result.unwrap()


def render(value: JsonObject, env: str = ENV_V4) -> JsonObject:
    return render_delegate(netconf(value), lease(env))


def base(**changes: Any) -> JsonObject:
    return {"name": "cbr0", "cniVersion": "0.3.1", "type": "flannel", **changes}


# ---------------------------------------------------------------- the spec's example


def test_spec_section_4_example() -> None:
    rendered = render(base(delegate={"hairpinMode": True}))
    assert rendered == {
        "cniVersion": "0.3.1",
        "hairpinMode": True,
        "ipMasq": False,
        "isGateway": True,
        "mtu": 1450,
        "name": "cbr0",
        "type": "bridge",
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": "10.244.7.0/24"}]],
            "routes": [{"dst": "10.244.0.0/16"}],
        },
    }


def test_kube_flannel_dual_stack() -> None:
    rendered = render(
        base(delegate={"hairpinMode": True, "isDefaultGateway": True}, cniVersion="1.0.0"),
        ENV_DUAL,
    )
    assert rendered == {
        "cniVersion": "1.0.0",
        "hairpinMode": True,
        "isDefaultGateway": True,
        "ipMasq": False,
        "isGateway": True,
        "mtu": 1450,
        "name": "cbr0",
        "type": "bridge",
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": "10.244.7.0/24"}], [{"subnet": "fd00:10:244:7::/64"}]],
            "routes": [{"dst": "10.244.0.0/16"}, {"dst": "fd00:10:244::/56"}],
        },
    }


# ---------------------------------------------------------------- the §4 table, row by row


@pytest.mark.parametrize(
    ("env", "ranges", "network_routes"),
    [
        pytest.param(ENV_V4, [[{"subnet": "10.244.7.0/24"}]], [{"dst": "10.244.0.0/16"}], id="v4"),
        pytest.param(
            ENV_V6, [[{"subnet": "fd00:10:244:7::/64"}]], [{"dst": "fd00:10:244::/56"}], id="v6"
        ),
        pytest.param(
            ENV_DUAL,
            [[{"subnet": "10.244.7.0/24"}], [{"subnet": "fd00:10:244:7::/64"}]],
            [{"dst": "10.244.0.0/16"}, {"dst": "fd00:10:244::/56"}],
            id="dual",
        ),
        pytest.param(
            # v6 lines first in the file: v4 still comes first in ranges and routes.
            ENV_V6_LINES
            + ENV_V4.replace("10.244.0.0/16", "10.244.0.0/16,10.96.0.0/12,10.244.0.0/16"),
            [[{"subnet": "10.244.7.0/24"}], [{"subnet": "fd00:10:244:7::/64"}]],
            [{"dst": "10.244.0.0/16"}, {"dst": "10.96.0.0/12"}, {"dst": "fd00:10:244::/56"}],
            id="dual-v6-first-several-networks",
        ),
    ],
)
def test_ranges_and_routes_per_family(
    env: str, ranges: list[Any], network_routes: list[JsonObject]
) -> None:
    user_routes = [{"dst": "192.168.0.0/16", "gw": "10.244.7.254"}, {"dst": "::/0"}]
    rendered = render(base(ipam={"routes": user_routes}), env)
    assert rendered["ipam"]["ranges"] == ranges
    assert rendered["ipam"]["routes"] == user_routes + network_routes


@pytest.mark.parametrize(
    ("delegate", "expected"),
    [
        pytest.param({}, True, id="default-bridge"),
        pytest.param({"type": "bridge"}, True, id="explicit-bridge"),
        pytest.param({"type": "bridge", "isGateway": False}, False, id="bridge-kept-false"),
    ],
)
def test_bridge_gets_is_gateway(delegate: JsonObject, expected: bool) -> None:
    rendered = render(base(delegate=delegate))
    assert rendered["type"] == "bridge"
    assert rendered["isGateway"] is expected


@pytest.mark.parametrize("delegate_type", ["macvlan", "ipvlan", "ptp", "bridge2"])
def test_non_bridge_gets_no_is_gateway(delegate_type: str) -> None:
    rendered = render(base(delegate={"type": delegate_type}))
    assert rendered["type"] == delegate_type
    assert "isGateway" not in rendered


def test_non_bridge_keeps_is_gateway_the_user_gave() -> None:
    rendered = render(base(delegate={"type": "macvlan", "isGateway": True}))
    assert rendered["isGateway"] is True


@pytest.mark.parametrize(
    ("flannel_ipmasq", "delegate", "expected"),
    [
        ("true", {}, False),
        ("false", {}, True),
        ("anything", {}, True),
        ("true", {"ipMasq": True}, True),
        ("false", {"ipMasq": False}, False),
    ],
)
def test_ip_masq_is_not_flannel_ipmasq_unless_delegate_sets_it(
    flannel_ipmasq: str, delegate: JsonObject, expected: bool
) -> None:
    env = ENV_V4.replace("FLANNEL_IPMASQ=true", f"FLANNEL_IPMASQ={flannel_ipmasq}")
    assert render(base(delegate=delegate), env)["ipMasq"] is expected


def test_mtu_defaults_to_flannel_mtu_and_delegate_mtu_is_kept() -> None:
    assert render(base(), ENV_V4.replace("1450", "8951"))["mtu"] == 8951
    assert render(base(delegate={"mtu": 1400}))["mtu"] == 1400


def test_cni_version_only_when_the_input_has_one() -> None:
    without = base()
    del without["cniVersion"]
    assert "cniVersion" not in render(without)
    assert render(base(cniVersion="1.1.0"))["cniVersion"] == "1.1.0"


def test_runtime_config_is_copied() -> None:
    runtime = {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "bandwidth": {"ingressRate": 1000},
    }
    conf = netconf(base(runtimeConfig=runtime))
    rendered = render_delegate(conf, lease())
    assert rendered["runtimeConfig"] == runtime
    rendered["runtimeConfig"]["portMappings"].clear()
    assert conf.runtime_config == runtime


def test_no_runtime_config_without_one() -> None:
    assert "runtimeConfig" not in render(base())


def test_prev_result_is_not_part_of_the_rendering() -> None:
    # Spec §5: the record is the rendering, and prevResult is never stored.
    rendered = render(base(prevResult={"cniVersion": "0.3.1", "ips": []}))
    assert "prevResult" not in rendered


@pytest.mark.parametrize(
    ("ipam", "expected_type"),
    [({}, "host-local"), ({"type": "host-local"}, "host-local"), ({"type": "static"}, "static")],
)
def test_ipam_type_defaults_to_host_local(ipam: JsonObject, expected_type: str) -> None:
    assert render(base(ipam=ipam))["ipam"]["type"] == expected_type


def test_ipam_keys_are_kept_and_ranges_replaced() -> None:
    ipam = {
        "type": "host-local",
        "dataDir": "/var/lib/cni/networks",
        "ranges": [[{"subnet": "192.168.0.0/24"}]],
        "subnet": "192.168.0.0/24",
    }
    rendered = render(base(ipam=ipam))["ipam"]
    assert rendered["dataDir"] == "/var/lib/cni/networks"
    assert rendered["subnet"] == "192.168.0.0/24"
    assert rendered["ranges"] == [[{"subnet": "10.244.7.0/24"}]]


def test_null_ipam_type_is_not_kept_as_null() -> None:
    # Spec §4: ipam type defaults to host-local. A null type either is refused (7) or
    # gets the default; a rendering with "type": null names no IPAM plugin at all.
    result = parse_netconf(json.dumps(base(ipam={"type": None})).encode(), "ADD")
    if isinstance(result, Failure):
        assert result.failure().code == 7
    else:
        assert render_delegate(result.unwrap(), lease())["ipam"]["type"] == "host-local"


def test_null_delegate_type_never_renders_a_null_type() -> None:
    result = parse_netconf(json.dumps(base(delegate={"type": None})).encode(), "ADD")
    if isinstance(result, Failure):
        assert result.failure().code == 7
    else:
        assert render_delegate(result.unwrap(), lease())["type"] == "bridge"


def test_render_is_total_for_every_config_parse_accepts() -> None:
    # render_delegate: "total for validated inputs". Whatever depth parse_netconf lets
    # through must render and store; otherwise parsing must refuse it (error 6).
    depth = 700
    data = b'{"name":"cbr0","type":"flannel","delegate":{"x":' + b"[" * depth + b"]" * depth + b"}}"
    parsed = parse_netconf(data, "ADD")
    if isinstance(parsed, Failure):
        assert parsed.failure().code == 6
        return
    try:
        rendered = render_delegate(parsed.unwrap(), lease())
        stored = encode(rendered)
    except RecursionError:
        pytest.fail(f"parse_netconf accepted {depth} levels of nesting that rendering can't copy")
    assert decode_record(stored, "r") == Success(rendered)


# ---------------------------------------------------------------- invariants (properties)


def _lease(case: SubnetEnvCase) -> Lease:
    return parse_subnet_env(case.text, "subnet.env").unwrap()


def _conf(value: JsonObject) -> NetConf:
    return parse_netconf(encode_json(value), "ADD").unwrap()


def _wreck(value: Any) -> None:
    """Change every container reachable from ``value`` in place."""
    if isinstance(value, dict):
        for item in list(value.values()):
            _wreck(item)
        value.clear()
        value["wrecked"] = True
    elif isinstance(value, list):
        for item in value:
            _wreck(item)
        value.clear()
        value.append("wrecked")


PROPERTY = settings(max_examples=100, deadline=None)


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_rendering_is_deterministic(value: JsonObject, case: SubnetEnvCase) -> None:
    first = render_delegate(_conf(value), _lease(case))
    second = render_delegate(_conf(value), _lease(case))
    assert first == second
    assert encode(first) == encode(second)


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_rendering_does_not_mutate_its_inputs(value: JsonObject, case: SubnetEnvCase) -> None:
    conf, node = _conf(value), _lease(case)
    conf_before, lease_before = copy.deepcopy(conf), copy.deepcopy(node)
    rendered = render_delegate(conf, node)
    assert conf == conf_before
    assert node == lease_before
    # Nor does it share anything mutable with them: changing the rendering leaves them be.
    _wreck(rendered)
    assert conf == conf_before
    assert node == lease_before


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_every_delegate_key_survives_with_its_value(value: JsonObject, case: SubnetEnvCase) -> None:
    rendered = render_delegate(_conf(value), _lease(case))
    for key, item in value.get("delegate", {}).items():
        assert key in rendered
        assert rendered[key] == item, key


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_name_and_ipam_are_always_ours(value: JsonObject, case: SubnetEnvCase) -> None:
    rendered = render_delegate(_conf(value), _lease(case))
    assert rendered["name"] == value["name"]
    expected_ranges = [
        [{"subnet": str(subnet.network)}]
        for subnet in (case.subnet4, case.subnet6)
        if subnet is not None
    ]
    assert rendered["ipam"]["ranges"] == expected_ranges
    user_ipam = value.get("ipam", {})
    for key, item in user_ipam.items():
        if key not in ("ranges", "routes"):
            assert rendered["ipam"][key] == item
    assert rendered["ipam"]["type"] == user_ipam.get("type", "host-local")


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_user_routes_survive_in_order_before_network_routes_v4_first(
    value: JsonObject, case: SubnetEnvCase
) -> None:
    rendered = render_delegate(_conf(value), _lease(case))
    user_routes = value.get("ipam", {}).get("routes", [])
    network_routes = [{"dst": str(n)} for n in (*case.networks4, *case.networks6)]
    assert rendered["ipam"]["routes"] == user_routes + network_routes


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_each_range_subnet_contains_the_flannel_subnet_address(
    value: JsonObject, case: SubnetEnvCase
) -> None:
    rendered = render_delegate(_conf(value), _lease(case))
    addresses = [s.ip for s in (case.subnet4, case.subnet6) if s is not None]
    ranges = rendered["ipam"]["ranges"]
    assert len(ranges) == len(addresses)
    for range_set, address in zip(ranges, addresses, strict=True):
        for entry in range_set:
            assert address in ip_network(entry["subnet"])


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_the_table_defaults_hold(value: JsonObject, case: SubnetEnvCase) -> None:
    rendered = render_delegate(_conf(value), _lease(case))
    delegate = value.get("delegate", {})
    assert rendered["type"] == delegate.get("type", "bridge")
    assert rendered["ipMasq"] == delegate.get("ipMasq", not case.ipmasq)
    assert rendered["mtu"] == delegate.get("mtu", case.mtu)
    if rendered["type"] == "bridge":
        assert rendered["isGateway"] == delegate.get("isGateway", True)
    else:
        assert ("isGateway" in rendered) == ("isGateway" in delegate)
    if "cniVersion" in value:
        assert rendered["cniVersion"] == value["cniVersion"]
    else:
        assert "cniVersion" not in rendered
    if "runtimeConfig" in value:
        assert rendered["runtimeConfig"] == value["runtimeConfig"]
    else:
        assert "runtimeConfig" not in rendered
    assert "prevResult" not in rendered


@PROPERTY
@given(netconfs(), subnet_env_cases())
def test_encode_then_decode_record_gives_an_equal_rendering(
    value: JsonObject, case: SubnetEnvCase
) -> None:
    rendered = render_delegate(_conf(value), _lease(case))
    data = encode(rendered)
    assert decode_record(data, "c0ffee:eth0") == Success(rendered)
    assert encode(decode_record(data, "c0ffee:eth0").unwrap()) == data
