"""core.check_routes: CHECK states the gateway IPAM really used (plugins#886)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.check_routes import with_route_gateways
from core.jsonvalue import JsonObject

DUAL: JsonObject = {
    "cniVersion": "1.0.0",
    "ips": [
        {"interface": 2, "address": "10.244.7.2/24", "gateway": "10.244.7.1"},
        {"interface": 2, "address": "fd00:10:244:7::2/64", "gateway": "fd00:10:244:7::1"},
    ],
    "routes": [
        {"dst": "10.244.0.0/16"},
        {"dst": "fd00:10:244::/56"},
        {"dst": "0.0.0.0/0", "gw": "10.244.7.254"},
    ],
}


def test_gateway_less_routes_get_their_familys_gateway() -> None:
    result = with_route_gateways(DUAL)
    assert result["routes"] == [
        {"dst": "10.244.0.0/16", "gw": "10.244.7.1"},
        {"dst": "fd00:10:244::/56", "gw": "fd00:10:244:7::1"},
        {"dst": "0.0.0.0/0", "gw": "10.244.7.254"},  # an explicit gateway is kept
    ]
    assert result["ips"] == DUAL["ips"]


def test_the_input_is_not_mutated() -> None:
    before = copy.deepcopy(DUAL)
    with_route_gateways(DUAL)
    assert before == DUAL


def test_a_family_without_a_gateway_leaves_its_routes_alone() -> None:
    result = with_route_gateways(
        {"ips": [{"address": "10.244.7.2/24"}], "routes": [{"dst": "10.244.0.0/16"}]}
    )
    assert result["routes"] == [{"dst": "10.244.0.0/16"}]


@pytest.mark.parametrize(
    "odd",
    [
        {},
        {"routes": "x"},
        {"routes": [1, None, {"dst": 5}, {"dst": "not-a-cidr"}], "ips": "x"},
        {"routes": [{"dst": "10.0.0.0/8"}], "ips": [7, {"address": "bad", "gateway": "x"}]},
    ],
)
def test_odd_results_pass_through_unchanged(odd: JsonObject) -> None:
    assert with_route_gateways(odd) == odd


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["ips", "routes", "dst", "gw", "address", "gateway"]),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_any_decoded_result_gives_a_result_never_an_exception(value: object) -> None:
    result = {"routes": value, "ips": value}
    assert isinstance(with_route_gateways(result), dict)
