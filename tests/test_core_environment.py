"""The CNI environment (spec §2): what each command needs and how each variable is checked."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from core.environment import Invocation, parse_environment
from tests.strategies import (
    COMMANDS,
    REQUIRED_VARIABLES,
    cni_args,
    cni_environments,
    container_ids,
    ifnames,
    invalid_container_ids,
    invalid_ifnames,
    spec_valid_id,
    spec_valid_ifname,
)

ALL_VARIABLES = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")
GOOD = {
    "CNI_CONTAINERID": "c0ffee0123456789",
    "CNI_NETNS": "/var/run/netns/cni-1234",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
}


def full_env(command: str, **overrides: str) -> dict[str, str]:
    return {"CNI_COMMAND": command, **GOOD, **overrides}


def only_required(command: str) -> dict[str, str]:
    return {k: v for k, v in full_env(command).items() if k in REQUIRED_VARIABLES[command]}


def error_of(env: dict[str, str]) -> tuple[int, str]:
    result = parse_environment(env)
    assert isinstance(result, Failure), result
    error = result.failure()
    return error.code, error.msg + " " + error.details


def names(variable: str, text: str) -> bool:
    return re.search(rf"\b{variable}\b", text) is not None


# ---------------------------------------------------------------- the §2 table


@pytest.mark.parametrize("command", COMMANDS)
def test_command_succeeds_with_exactly_its_required_variables(command: str) -> None:
    result = parse_environment(only_required(command))
    assert isinstance(result, Success), result
    assert result.unwrap().command == command


@pytest.mark.parametrize(
    ("command", "variable"),
    [(c, v) for c in COMMANDS for v in REQUIRED_VARIABLES[c] if v != "CNI_COMMAND"],
)
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_each_required_variable_missing_is_error_4_naming_it(
    command: str, variable: str, how: str
) -> None:
    env = full_env(command)
    if how == "absent":
        del env[variable]
    else:
        env[variable] = ""
    code, text = error_of(env)
    assert code == 4
    assert names(variable, text), text


@pytest.mark.parametrize("command", [c for c in COMMANDS if len(REQUIRED_VARIABLES[c]) > 2])
def test_every_missing_variable_is_named_at_once(command: str) -> None:
    code, text = error_of({"CNI_COMMAND": command})
    assert code == 4
    for variable in REQUIRED_VARIABLES[command][1:]:
        assert names(variable, text), (variable, text)


@pytest.mark.parametrize("command", COMMANDS)
def test_variables_a_command_does_not_need_are_not_named_missing(command: str) -> None:
    # Drop one required variable so that the answer is an error listing what is missing.
    env = {"CNI_COMMAND": command}
    result = parse_environment(env)
    if command == "VERSION":
        assert isinstance(result, Success)
        return
    assert isinstance(result, Failure)
    text = result.failure().msg
    for variable in ALL_VARIABLES:
        if variable not in REQUIRED_VARIABLES[command]:
            assert not names(variable, text), (variable, text)


@pytest.mark.parametrize("value", [None, ""], ids=["absent", "empty"])
def test_cni_command_missing_is_error_4_naming_it(value: str | None) -> None:
    env = dict(GOOD)
    if value is not None:
        env["CNI_COMMAND"] = value
    code, text = error_of(env)
    assert code == 4
    assert names("CNI_COMMAND", text)


@pytest.mark.parametrize("command", ["add", "Add", "INIT", "VERSION ", " ADD", "DELETE", "x"])
def test_unknown_cni_command_is_error_4(command: str) -> None:
    code, text = error_of(full_env(command))
    assert code == 4
    assert "CNI_COMMAND" in text


def test_version_needs_only_cni_command() -> None:
    result = parse_environment({"CNI_COMMAND": "VERSION"})
    assert isinstance(result, Success)
    assert result.unwrap().command == "VERSION"


def test_del_allows_empty_netns() -> None:
    for env in (full_env("DEL", CNI_NETNS=""), only_required("DEL")):
        result = parse_environment(env)
        assert isinstance(result, Success), result
        assert result.unwrap().netns == ""


@pytest.mark.parametrize("command", ["ADD", "CHECK"])
def test_add_and_check_need_netns(command: str) -> None:
    code, text = error_of(full_env(command, CNI_NETNS=""))
    assert code == 4
    assert names("CNI_NETNS", text)


def test_invocation_carries_the_validated_values() -> None:
    env = full_env("ADD", CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=web-0")
    assert parse_environment(env) == Success(
        Invocation(
            command="ADD",
            container_id="c0ffee0123456789",
            netns="/var/run/netns/cni-1234",
            ifname="eth0",
            path=("/opt/cni/bin", "/usr/lib/cni"),
            args=(("IgnoreUnknown", "1"), ("K8S_POD_NAME", "web-0")),
        )
    )


# ---------------------------------------------------------------- container ID


@pytest.mark.parametrize(
    "container_id",
    [
        "a",
        "0",
        "c0ffee0123456789",
        "k8s_POD_web-0_default_1.2",
        "A-b_c.d",
        "f" * 64,
        "x..y",
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_valid_container_ids(command: str, container_id: str) -> None:
    result = parse_environment(full_env(command, CNI_CONTAINERID=container_id))
    assert isinstance(result, Success), result
    assert result.unwrap().container_id == container_id


@pytest.mark.parametrize(
    "container_id",
    [
        "../../etc/x",
        "..",
        ".",
        ".hidden",
        "-rf",
        "_x",
        "/etc/passwd",
        "a/b",
        "a b",
        "a:b",
        "a\tb",
        "caf\u00e9",
        "a\\b",
        "a\nb",
        " a",
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_invalid_container_id_is_error_4(command: str, container_id: str) -> None:
    code, text = error_of(full_env(command, CNI_CONTAINERID=container_id))
    assert code == 4
    assert names("CNI_CONTAINERID", text)


@settings(max_examples=150)
@given(st.sampled_from(["ADD", "DEL", "CHECK"]), invalid_container_ids())
def test_no_invalid_container_id_is_accepted(command: str, container_id: str) -> None:
    code, _ = error_of(full_env(command, CNI_CONTAINERID=container_id))
    assert code == 4


@settings(max_examples=100)
@given(st.sampled_from(COMMANDS), invalid_container_ids(), invalid_ifnames())
@example("GC", "../../etc/x", "a/b")
@example("STATUS", "../../etc/x", "..")
def test_an_invocation_never_carries_an_invalid_container_id_or_ifname(
    command: str, container_id: str, ifname: str
) -> None:
    # Spec §2: an ID like ../../etc/x must never reach a file path. Whatever the command,
    # an Invocation holds a valid container ID and ifname, or none at all.
    env = full_env(command, CNI_CONTAINERID=container_id, CNI_IFNAME=ifname)
    result = parse_environment(env)
    if isinstance(result, Success):
        inv = result.unwrap()
        assert inv.container_id == "" or spec_valid_id(inv.container_id), inv
        assert inv.ifname == "" or spec_valid_ifname(inv.ifname), inv


# ---------------------------------------------------------------- interface name


@pytest.mark.parametrize(
    "ifname",
    [
        "e",
        "eth0",
        "net1",
        "a" * 15,
        "veth-a.b_c@d",
        "\u00e9" * 7,  # 14 bytes
        "\u65e5\u672c\u8a9e\u65e5\u672c",  # 15 bytes
        "\U0001f642" * 3 + "abc",  # 15 bytes
        "...",
        ".a",
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_valid_ifnames(command: str, ifname: str) -> None:
    result = parse_environment(full_env(command, CNI_IFNAME=ifname))
    assert isinstance(result, Success), result
    assert result.unwrap().ifname == ifname


@pytest.mark.parametrize(
    "ifname",
    [
        pytest.param("a" * 16, id="16-bytes"),
        pytest.param("a" * 40, id="40-bytes"),
        pytest.param("\u00e9" * 8, id="8-two-byte-chars-16-bytes"),
        pytest.param("\u65e5" * 6, id="6-three-byte-chars-18-bytes"),
        pytest.param("eth0" + "\U0001f642" * 3, id="multibyte-16-bytes"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dotdot"),
        pytest.param("a/b", id="slash"),
        pytest.param("/", id="only-slash"),
        pytest.param("eth0:1", id="colon"),
        pytest.param("eth 0", id="space"),
        pytest.param("eth\t0", id="tab"),
        pytest.param("eth0\n", id="newline"),
        pytest.param("eth\u00a00", id="no-break-space"),
        pytest.param(" ", id="only-space"),
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_invalid_ifname_is_error_4(command: str, ifname: str) -> None:
    code, text = error_of(full_env(command, CNI_IFNAME=ifname))
    assert code == 4
    assert names("CNI_IFNAME", text)


@settings(max_examples=150)
@given(st.sampled_from(["ADD", "DEL", "CHECK"]), invalid_ifnames())
def test_no_invalid_ifname_is_accepted(command: str, ifname: str) -> None:
    code, _ = error_of(full_env(command, CNI_IFNAME=ifname))
    assert code == 4


@pytest.mark.parametrize("ifname", [chr(0xD800), "eth" + chr(0xDFFF)], ids=["d800", "eth-dfff"])
def test_ifname_with_lone_surrogate_is_error_4_not_an_exception(ifname: str) -> None:
    # core/__init__: functions return Failure for bad input, they never raise for it.
    # (Surrogates outside U+DC80-U+DCFF stand for no byte at all: no interface has them.)
    code, _ = error_of(full_env("ADD", CNI_IFNAME=ifname))
    assert code == 4


def test_container_id_and_ifname_problems_are_named_together() -> None:
    code, text = error_of(full_env("ADD", CNI_CONTAINERID="../x", CNI_IFNAME="a" * 20, CNI_PATH=""))
    assert code == 4
    for variable in ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"):
        assert names(variable, text), (variable, text)


# ---------------------------------------------------------------- CNI_ARGS and CNI_PATH


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("", ()),
        ("K=V", (("K", "V"),)),
        ("K=V;K2=V2", (("K", "V"), ("K2", "V2"))),
        (
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
            (("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", "default"), ("K8S_POD_NAME", "web-0")),
        ),
        ("K=", (("K", ""),)),
        ("K=/a/b.c", (("K", "/a/b.c"),)),
    ],
)
def test_cni_args_are_parsed_in_order(text: str, pairs: tuple[tuple[str, str], ...]) -> None:
    result = parse_environment(full_env("ADD", CNI_ARGS=text))
    assert isinstance(result, Success), result
    assert result.unwrap().args == pairs


@pytest.mark.parametrize("text", ["K", "K=V;junk", "=V", "K=V;=W"])
def test_malformed_cni_args_is_error_4_naming_it(text: str) -> None:
    code, msg = error_of(full_env("ADD", CNI_ARGS=text))
    assert code == 4
    assert names("CNI_ARGS", msg)


@settings(max_examples=100)
@given(cni_args())
def test_cni_args_round_trip(args: tuple[str, tuple[tuple[str, str], ...]]) -> None:
    text, pairs = args
    result = parse_environment(full_env("ADD", CNI_ARGS=text))
    assert isinstance(result, Success)
    assert result.unwrap().args == pairs


def test_cni_path_is_split_on_colons_in_order() -> None:
    result = parse_environment(full_env("GC", CNI_PATH="/opt/cni/bin:/usr/libexec/cni:/x"))
    assert isinstance(result, Success)
    assert result.unwrap().path == ("/opt/cni/bin", "/usr/libexec/cni", "/x")


# ---------------------------------------------------------------- properties


@settings(max_examples=200)
@given(cni_environments())
def test_every_valid_environment_is_accepted_as_given(env: dict[str, str]) -> None:
    result = parse_environment(env)
    assert isinstance(result, Success), result
    inv = result.unwrap()
    assert inv.command == env["CNI_COMMAND"]
    assert inv.container_id == env.get("CNI_CONTAINERID", "")
    assert inv.ifname == env.get("CNI_IFNAME", "")
    assert inv.netns == env.get("CNI_NETNS", "")
    assert ":".join(inv.path) == env.get("CNI_PATH", "")


@settings(max_examples=200)
@given(st.sampled_from(["ADD", "DEL", "CHECK"]), container_ids(), ifnames())
def test_valid_ids_and_ifnames_are_accepted(command: str, container_id: str, ifname: str) -> None:
    result = parse_environment(full_env(command, CNI_CONTAINERID=container_id, CNI_IFNAME=ifname))
    assert isinstance(result, Success), result
    assert (result.unwrap().container_id, result.unwrap().ifname) == (container_id, ifname)


@settings(max_examples=200)
@given(
    st.sampled_from(COMMANDS),
    st.sets(st.sampled_from(ALL_VARIABLES[1:]), min_size=1),
)
def test_error_names_exactly_the_missing_required_variables(
    command: str, dropped: set[str]
) -> None:
    env = {k: v for k, v in full_env(command).items() if k not in dropped}
    missing = [v for v in REQUIRED_VARIABLES[command] if v in dropped]
    result = parse_environment(env)
    if not missing:
        assert isinstance(result, Success)
        return
    assert isinstance(result, Failure)
    assert result.failure().code == 4
    for variable in missing:
        assert names(variable, result.failure().msg)
