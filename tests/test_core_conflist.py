"""Configuration files as libcni loads them, and the request flannel's entry receives."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from returns.result import Failure, Success

from core.conflist import (
    Network,
    flannel_network,
    flannel_request,
    is_conf_file,
    parse_network,
    plugin_types,
)
from core.errors import CniError
from core.netconf import parse_netconf
from tests.strategies import JsonObject, netconfs

KUBE_FLANNEL: JsonObject = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def network(obj: object, source: str = "/etc/cni/net.d/10-flannel.conflist") -> Network:
    return parse_network(json.dumps(obj).encode(), source).unwrap()


def failure(result: object) -> CniError:
    assert isinstance(result, Failure), result
    error = result.failure()
    assert isinstance(error, CniError)
    return error


def test_a_conflist_entry_gets_the_list_name_and_version() -> None:
    request = flannel_request(network(KUBE_FLANNEL)).unwrap()
    assert request == {
        "type": "flannel",
        "delegate": {"hairpinMode": True, "isDefaultGateway": True},
        "name": "cbr0",
        "cniVersion": "0.3.1",
    }


def test_the_list_name_and_version_override_the_entry_s_own() -> None:
    conf = copy.deepcopy(KUBE_FLANNEL)
    conf["plugins"][0].update(name="other", cniVersion="1.0.0")
    request = flannel_request(network(conf)).unwrap()
    assert (request["name"], request["cniVersion"]) == ("cbr0", "0.3.1")


def test_a_list_without_cni_version_leaves_the_entry_s_and_speaks_0_1_0() -> None:
    conf = {"name": "cbr0", "plugins": [{"type": "flannel", "cniVersion": "1.0.0"}]}
    parsed = network(conf)
    assert flannel_request(parsed).unwrap()["cniVersion"] == "1.0.0"
    assert parsed.version == "0.1.0"


def test_the_request_is_a_copy() -> None:
    parsed = network(KUBE_FLANNEL)
    request = flannel_request(parsed).unwrap()
    request["delegate"]["hairpinMode"] = False
    assert parsed.plugins[0]["delegate"]["hairpinMode"] is True


def test_a_single_conf_is_sent_unchanged() -> None:
    conf = {"name": "cbr0", "cniVersion": "1.0.0", "type": "flannel", "x": 1}
    parsed = network(conf, "/etc/cni/net.d/10-flannel.conf")
    assert not parsed.is_list
    assert parsed.version == "1.0.0"
    assert parsed.display_name == "cbr0"
    assert flannel_request(parsed).unwrap() == conf


@pytest.mark.parametrize(
    ("source", "obj", "is_list"),
    [
        ("a.conflist", KUBE_FLANNEL, True),
        ("a.conf", {"type": "flannel", "name": "n"}, False),
        ("a.json", {"type": "flannel", "name": "n"}, False),
        ("a.conf", {"type": "flannel", "name": "n", "plugins": 1}, False),
        ("CONF", KUBE_FLANNEL, True),
        ("CONF", {"type": "flannel", "name": "n"}, False),
    ],
)
def test_list_or_single_follows_the_suffix_then_the_content(
    source: str, obj: JsonObject, is_list: bool
) -> None:
    assert network(obj, source).is_list is is_list


def test_no_flannel_entry_is_error_7_naming_the_types() -> None:
    conf = {"name": "cbr0", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}
    error = failure(flannel_request(network(conf)))
    assert error.code == 7
    assert "no plugin of type 'flannel'" in error.msg
    assert "'bridge', 'portmap'" in error.msg


def test_a_conf_of_another_plugin_is_error_7() -> None:
    error = failure(flannel_request(network({"type": "bridge", "name": "n"}, "x.conf")))
    assert error.code == 7


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"{not json", 6, "not valid JSON"),
        (b"[]", 6, "must be a JSON object"),
        (b'{"plugins": [{"type": "flannel"}]}', 7, "needs a 'name'"),
        (b'{"name": "n", "plugins": []}', 7, "non-empty array"),
        (b'{"name": "n", "plugins": {"type": "flannel"}}', 7, "non-empty array"),
        (b'{"name": "n", "plugins": ["flannel"]}', 7, "plugins[0] must be an object"),
        (b'{"name": "n", "cniVersion": 1, "plugins": [{}]}', 7, "cniVersion must be a string"),
    ],
)
def test_malformed_files_name_the_problem(data: bytes, code: int, words: str) -> None:
    error = failure(parse_network(data, "/etc/cni/net.d/x.conflist"))
    assert error.code == code
    assert words in error.msg
    assert "/etc/cni/net.d/x.conflist" in error.msg


def test_the_flannel_entry_is_validated_as_add_validates_it() -> None:
    conf = copy.deepcopy(KUBE_FLANNEL)
    conf["plugins"][0]["delegate"] = {"name": "x"}
    error = failure(flannel_network(network(conf)))
    request = flannel_request(network(conf)).unwrap()
    assert error == failure(parse_netconf(json.dumps(request).encode(), "ADD"))
    assert error.code == 7


@given(netconfs())
def test_a_config_moved_into_a_list_validates_to_the_same_netconf(conf: JsonObject) -> None:
    entry = {k: v for k, v in conf.items() if k not in ("name", "cniVersion")}
    listed: JsonObject = {"name": conf["name"], "plugins": [{"type": "portmap"}, entry]}
    if "cniVersion" in conf:
        listed["cniVersion"] = conf["cniVersion"]
    expected = parse_netconf(json.dumps(conf).encode(), "ADD")
    assert flannel_network(network(listed)).map(lambda f: f.conf) == expected


def test_plugin_types_are_flannel_its_delegate_its_ipam_then_the_rest() -> None:
    assert plugin_types(flannel_network(network(KUBE_FLANNEL)).unwrap()) == (
        "flannel",
        "bridge",
        "host-local",
        "portmap",
    )


def test_plugin_types_follow_the_configured_delegate_and_ipam_once_each() -> None:
    conf = {
        "name": "n",
        "cniVersion": "1.0.0",
        "plugins": [
            {"type": "tuning"},
            {"type": "flannel", "delegate": {"type": "ipvlan"}, "ipam": {"type": "static"}},
            {"type": "tuning"},
            {"type": 7},
            {"type": "bandwidth"},
        ],
    }
    assert plugin_types(flannel_network(network(conf)).unwrap()) == (
        "tuning",
        "flannel",
        "ipvlan",
        "static",
        "bandwidth",
    )


@pytest.mark.parametrize(
    ("name", "loaded"),
    [("10-flannel.conflist", True), ("a.conf", True), ("a.json", True), ("a.conf.bak", False)],
)
def test_conf_files_are_the_ones_libcni_loads(name: str, loaded: bool) -> None:
    assert is_conf_file(name) is loaded


def test_parse_network_succeeds_on_the_kube_flannel_list() -> None:
    parsed = parse_network(json.dumps(KUBE_FLANNEL).encode(), "k.conflist")
    assert isinstance(parsed, Success)
    assert parsed.unwrap().display_name == "cbr0"
    assert len(parsed.unwrap().plugins) == 2
