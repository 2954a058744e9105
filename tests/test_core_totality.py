"""The core's one fuzzed guarantee (core/__init__): every input gives a Result, never an exception.

Success, or Failure carrying a CniError whose code is an int, for arbitrary
bytes and arbitrary text mappings, plus structured inputs that reach past the
decoders into validation.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from core.delegate_output import Outcome, interpret
from core.drift import check_drift, record_subnets
from core.environment import parse_environment
from core.errors import CniError
from core.jsonvalue import encode
from core.netconf import parse_netconf
from core.records import decode_record
from core.render import render_delegate
from core.subnet_env import parse_subnet_env
from tests.strategies import COMMANDS, VALID_ATTACHMENTS

FUZZ = settings(max_examples=300, deadline=None)

# Text including lone surrogates: JSON escapes and mappings can carry them.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=20)
CNI_VARIABLES = (
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
)
NETCONF_KEYS = (
    "cniVersion",
    "name",
    "type",
    "subnetFile",
    "dataDir",
    "delegate",
    "ipam",
    "runtimeConfig",
    "prevResult",
    "args",
    VALID_ATTACHMENTS,
)
SUBNET_ENV_KEYS = (
    "FLANNEL_NETWORK",
    "FLANNEL_SUBNET",
    "FLANNEL_IPV6_NETWORK",
    "FLANNEL_IPV6_SUBNET",
    "FLANNEL_MTU",
    "FLANNEL_IPMASQ",
)

LEASE = parse_subnet_env(
    b"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n"
    b"FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n"
    b"FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    "subnet.env",
).unwrap()


def assert_result(result: Result[Any, CniError]) -> None:
    assert isinstance(result, Success | Failure), result
    if isinstance(result, Failure):
        error = result.failure()
        assert isinstance(error, CniError)
        assert isinstance(error.code, int)
        assert not isinstance(error.code, bool)
        assert isinstance(error.msg, str)
        assert error.msg
        assert isinstance(error.details, str)


# JSON values whose strings may hold anything, lone surrogates included.
JSON_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "type",
                        "name",
                        "ipam",
                        "routes",
                        "dst",
                        "gw",
                        "containerID",
                        "ifname",
                        "subnet",
                        "ranges",
                    ]
                ),
                ANY_TEXT,
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)
# Valid-looking skeletons with arbitrary values at the keys the validation reads.
STRUCTURED_NETCONF = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(NETCONF_KEYS, JSON_ANY),
        "cniVersion": st.sampled_from(["0.3.1", "1.0.0", "1.1.0"]) | JSON_ANY,
        "name": st.just("cbr0") | JSON_ANY,
        "type": st.just("flannel") | JSON_ANY,
    },
)


@FUZZ
@given(st.sampled_from(COMMANDS), st.binary(max_size=200))
def test_parse_netconf_of_any_bytes_is_a_result(command: str, data: bytes) -> None:
    assert_result(parse_netconf(data, command))


@FUZZ
@given(st.sampled_from(COMMANDS), STRUCTURED_NETCONF)
@example(
    "GC",
    {
        "cniVersion": "1.1.0",
        "name": "cbr0",
        "type": "flannel",
        VALID_ATTACHMENTS: [{"containerID": "c1", "ifname": "\ud800"}],
    },
)
def test_parse_netconf_of_any_json_object_is_a_result(command: str, value: Any) -> None:
    assert_result(parse_netconf(json.dumps(value).encode(), command))


@FUZZ
@given(STRUCTURED_NETCONF)
@example({"name": "cbr0", "type": "flannel", "delegate": {"type": None}})
def test_every_config_parse_accepts_renders_and_stores(value: Any) -> None:
    parsed = parse_netconf(json.dumps(value).encode(), "ADD")
    if isinstance(parsed, Success):
        rendered = render_delegate(parsed.unwrap(), LEASE)
        assert decode_record(encode(rendered), "c1:eth0") == Success(rendered)


@FUZZ
@given(st.binary(max_size=300))
def test_parse_subnet_env_of_any_bytes_is_a_result(data: bytes) -> None:
    assert_result(parse_subnet_env(data, "subnet.env"))


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(SUBNET_ENV_KEYS) | ANY_TEXT,
            st.sampled_from(["=", " = ", "", "=="]),
            ANY_TEXT,
        ),
        max_size=8,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_parse_subnet_env_of_any_key_value_text_is_a_result(
    lines: list[tuple[str, str, str]], end: str
) -> None:
    text = end.join(k + sep + v for k, sep, v in lines)
    assert_result(parse_subnet_env(text.encode("utf-8", "surrogatepass"), "subnet.env"))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(CNI_VARIABLES) | ANY_TEXT,
        st.sampled_from(list(COMMANDS)) | ANY_TEXT,
        max_size=8,
    )
)
@example(
    {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/n",
        "CNI_IFNAME": "\ud800",
        "CNI_PATH": "/b",
    }
)
def test_parse_environment_of_any_mapping_is_a_result(env: dict[str, str]) -> None:
    assert_result(parse_environment(env))


@FUZZ
@given(st.binary(max_size=200), ANY_TEXT)
def test_decode_record_of_any_bytes_is_a_result(data: bytes, file: str) -> None:
    result = decode_record(data, file)
    assert_result(result)
    if isinstance(result, Success):
        assert_result(check_drift(result.unwrap(), LEASE))


@FUZZ
@given(st.dictionaries(ANY_TEXT | st.sampled_from(["ipam", "type"]), JSON_ANY, max_size=4))
def test_drift_of_any_record_is_a_result(record: dict[str, Any]) -> None:
    for subnet in record_subnets(record):
        assert subnet.version in (4, 6)
    assert_result(check_drift(record, LEASE))


@FUZZ
@given(
    ANY_TEXT,
    st.sampled_from(COMMANDS) | ANY_TEXT,
    st.integers(min_value=-(2**31), max_value=2**31),
    st.binary(max_size=200),
    st.binary(max_size=200),
)
def test_interpret_of_any_outcome_is_a_result(
    delegate: str, command: str, returncode: int, stdout: bytes, stderr: bytes
) -> None:
    assert_result(interpret(delegate, command, Outcome(returncode, stdout, stderr)))


@FUZZ
@given(
    st.sampled_from(COMMANDS),
    st.integers(min_value=-(2**31), max_value=2**31),
    JSON_ANY,
)
def test_interpret_of_any_json_output_is_a_result(
    command: str, returncode: int, stdout: Any
) -> None:
    data = json.dumps(stdout).encode()
    assert_result(interpret("bridge", command, Outcome(returncode, data, b"")))
