"""What a delegate's exit status and output mean (spec §2 "Delegation")."""

from __future__ import annotations

import json
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from core.delegate_output import (
    MAX_STDOUT_BYTES,
    Outcome,
    interpret,
    supported_versions,
)
from tests.strategies import COMMANDS, SPEC_VERSIONS, JsonObject, json_objects, json_scalars

ADD_RESULT: JsonObject = {
    "cniVersion": "1.1.0",
    "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"}],
    "ips": [{"address": "10.244.7.5/24", "gateway": "10.244.7.1", "interface": 0}],
    "routes": [{"dst": "10.244.0.0/16"}],
}


def outcome(returncode: int, stdout: bytes | str = b"", stderr: bytes | str = b"") -> Outcome:
    out = stdout.encode() if isinstance(stdout, str) else stdout
    err = stderr.encode() if isinstance(stderr, str) else stderr
    return Outcome(returncode, out, err)


def error_object(code: int, msg: str, details: str | None = None) -> bytes:
    obj: JsonObject = {"cniVersion": "1.1.0", "code": code, "msg": msg}
    if details is not None:
        obj["details"] = details
    return json.dumps(obj).encode()


# ---------------------------------------------------------------- success


def test_add_success_is_the_delegates_result() -> None:
    result = interpret("bridge", "ADD", outcome(0, json.dumps(ADD_RESULT) + "\n"))
    assert result == Success(ADD_RESULT)


def test_version_success_is_the_delegates_answer() -> None:
    answer = {"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}
    assert interpret("bridge", "VERSION", outcome(0, json.dumps(answer))) == Success(answer)


@pytest.mark.parametrize("command", ["DEL", "CHECK", "STATUS", "GC"])
@pytest.mark.parametrize(
    "stdout", [b"", b"garbage", json.dumps(ADD_RESULT).encode(), b"\xff", error_object(7, "x")]
)
def test_non_add_success_ignores_stdout(command: str, stdout: bytes) -> None:
    assert interpret("bridge", command, outcome(0, stdout)) == Success(None)


@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="words"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'{"cniVersion": "1.1.0"', id="truncated"),
        pytest.param(b'{"ips": [NaN]}', id="nan"),
    ],
)
def test_add_success_with_a_non_result_is_error_101(stdout: bytes) -> None:
    result = interpret("bridge", "ADD", outcome(0, stdout, "bridge: wrote junk\n"))
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 101
    assert "bridge" in error.msg
    assert "wrote junk" in error.msg + error.details


# ---------------------------------------------------------------- the delegate's error object


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("code", "msg", "details"),
    [
        (7, "invalid config", "mtu must be a number"),
        (11, "try again later", ""),
        (3, "container unknown", "no such netns"),
        (42, "something only the delegate knows", "details"),
        (999, "generic", "the Go plugins' catch-all"),
        (150, "delegate-defined", "x"),
    ],
)
def test_error_object_is_passed_through_unchanged(
    command: str, code: int, msg: str, details: str
) -> None:
    result = interpret("bridge", command, outcome(1, error_object(code, msg, details), "log\n"))
    assert isinstance(result, Failure)
    error = result.failure()
    assert (error.code, error.msg, error.details) == (code, msg, details)


def test_error_object_without_details_keeps_code_and_msg() -> None:
    result = interpret("bridge", "ADD", outcome(1, error_object(42, "nope")))
    assert isinstance(result, Failure)
    assert (result.failure().code, result.failure().msg) == (42, "nope")
    assert result.failure().details == ""


def test_null_details_is_no_details() -> None:
    # Spec §2: keep the delegate's code, msg and details. A null details says nothing;
    # it must not turn into the text "None".
    stdout = b'{"cniVersion": "1.1.0", "code": 7, "msg": "bad config", "details": null}'
    result = interpret("bridge", "ADD", outcome(1, stdout))
    assert isinstance(result, Failure)
    assert (result.failure().code, result.failure().msg) == (7, "bad config")
    assert result.failure().details == ""


@pytest.mark.parametrize("returncode", [1, 2, 255, -9])
def test_error_object_wins_whatever_the_exit_status(returncode: int) -> None:
    result = interpret("macvlan", "DEL", outcome(returncode, error_object(5, "I/O", "disk")))
    assert isinstance(result, Failure)
    assert (result.failure().code, result.failure().msg, result.failure().details) == (
        5,
        "I/O",
        "disk",
    )


@settings(max_examples=200)
@given(
    st.sampled_from(COMMANDS),
    st.integers(min_value=-(2**31), max_value=2**31).filter(lambda c: c != 0),
    # Code 0 is not an error code: its own test below.
    st.integers(min_value=-(2**31), max_value=2**31).filter(lambda c: c != 0),
    st.text(),
    st.text(),
)
def test_any_error_object_is_passed_through(
    command: str, returncode: int, code: int, msg: str, details: str
) -> None:
    result = interpret("bridge", command, outcome(returncode, error_object(code, msg, details)))
    assert isinstance(result, Failure)
    error = result.failure()
    assert (error.code, error.msg, error.details) == (code, msg, details)


# ---------------------------------------------------------------- failure without an error object


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"panic: runtime error", id="text"),
        pytest.param(b'{"msg": "no code"}', id="object-without-code"),
        pytest.param(b'{"code": "7", "msg": "string code"}', id="string-code"),
        pytest.param(b'{"code": true, "msg": "bool code"}', id="bool-code"),
        pytest.param(b'{"code": 7}', id="no-msg"),
        pytest.param(b"[7]", id="array"),
    ],
)
def test_non_zero_exit_without_error_object_is_101_quoting_stderr(
    command: str, stdout: bytes
) -> None:
    result = interpret("bridge", command, outcome(2, stdout, "failed to set up bridge cni0\n"))
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 101
    assert "bridge" in error.msg
    assert "failed to set up bridge cni0" in error.msg + error.details


def test_stderr_quoted_is_its_tail() -> None:
    head = "EARLY-LINE " + "x" * 20_000
    tail = "the last words of the delegate"
    result = interpret("bridge", "ADD", outcome(1, b"", head + "\n" + tail + "\n"))
    assert isinstance(result, Failure)
    text = result.failure().msg + result.failure().details
    assert tail in text
    assert "EARLY-LINE" not in text
    assert len(text) < len(head)


def test_empty_stderr_still_explains() -> None:
    result = interpret("bridge", "DEL", outcome(1))
    assert isinstance(result, Failure)
    assert result.failure().code == 101
    assert result.failure().msg


def test_undecodable_stderr_is_still_quoted() -> None:
    result = interpret("bridge", "ADD", outcome(1, b"", b"bad \xff byte then: the reason\n"))
    assert isinstance(result, Failure)
    assert "the reason" in result.failure().msg + result.failure().details


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM, signal.SIGABRT], ids=lambda s: s.name
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_killed_by_signal_is_named(command: str, sig: signal.Signals) -> None:
    result = interpret("bridge", command, outcome(-int(sig), b"", "oom\n"))
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 101
    assert sig.name in error.msg + error.details


def test_killed_by_an_unknown_signal_is_still_101() -> None:
    result = interpret("bridge", "ADD", outcome(-200))
    assert isinstance(result, Failure)
    assert result.failure().code == 101
    assert "200" in result.failure().msg


@settings(max_examples=200)
@given(
    st.sampled_from(COMMANDS),
    st.integers(min_value=-(2**31), max_value=2**31).filter(lambda c: c != 0),
    st.binary(max_size=64).filter(lambda b: b"code" not in b),
    st.binary(max_size=4096),
)
def test_failure_without_an_error_object_is_always_101(
    command: str, returncode: int, stdout: bytes, stderr: bytes
) -> None:
    result = interpret("bridge", command, Outcome(returncode, stdout, stderr))
    assert isinstance(result, Failure)
    assert result.failure().code == 101


@settings(max_examples=200)
@given(json_objects())
def test_add_success_returns_any_object_unchanged(obj: JsonObject) -> None:
    assert interpret("bridge", "ADD", outcome(0, json.dumps(obj))) == Success(obj)


# ---------------------------------------------------------------- a version listed in VERSION


@pytest.mark.parametrize(
    ("answer", "version", "expected"),
    [
        ({"cniVersion": "1.1.0", "supportedVersions": ["1.0.0", "1.1.0"]}, "1.1.0", True),
        ({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}, "1.1.0", False),
        ({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"]}, "0.3.1", False),
        ({"cniVersion": "1.1.0"}, "1.1.0", False),
        ({"supportedVersions": "1.1.0"}, "1.1.0", False),
        ({"supportedVersions": None}, "1.1.0", False),
        (None, "1.1.0", False),
    ],
)
def test_supports(answer: JsonObject | None, version: str, expected: bool) -> None:
    assert (version in supported_versions(answer)) is expected


@pytest.mark.parametrize(
    ("answer", "versions"),
    [
        ({"supportedVersions": ["0.3.1", "0.4.0", "1.0.0"]}, ("0.3.1", "0.4.0", "1.0.0")),
        ({"supportedVersions": ["1.0.0", 1, None, ["1.1.0"], "1.1.0"]}, ("1.0.0", "1.1.0")),
        ({"supportedVersions": []}, ()),
        ({"supportedVersions": "1.1.0"}, ()),
        ({"supportedVersions": {"1.1.0": True}}, ()),
        ({"cniVersion": "1.1.0"}, ()),
        ({}, ()),
        (None, ()),
    ],
)
def test_supported_versions_lists_only_the_strings_listed(
    answer: JsonObject | None, versions: tuple[str, ...]
) -> None:
    assert supported_versions(answer) == versions


VERSION_ANSWERS = st.one_of(
    st.none(),
    json_objects(),
    st.fixed_dictionaries(
        {"supportedVersions": st.lists(st.sampled_from(SPEC_VERSIONS) | json_scalars(), max_size=6)}
    ),
)


@settings(max_examples=150)
@given(VERSION_ANSWERS, st.sampled_from(SPEC_VERSIONS))
def test_a_version_counts_when_the_answer_lists_it(answer: JsonObject | None, version: str) -> None:
    listed = (answer or {}).get("supportedVersions")
    expected = isinstance(listed, list) and version in listed
    assert (version in supported_versions(answer)) is expected


# ---------------------------------------------------------------- bounds and versions


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("returncode", [0, 1, -9])
def test_a_delegate_stopped_for_printing_too_much_is_101_whatever_it_printed(
    command: str, returncode: int
) -> None:
    outcome = Outcome(returncode, json.dumps(ADD_RESULT).encode(), b"flood\n", stdout_overflow=True)
    result = interpret("bridge", command, outcome, "1.1.0")
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 101
    assert "'bridge'" in error.msg
    assert f"printed more than {MAX_STDOUT_BYTES >> 20} MiB on stdout" in error.msg
    assert "flood" in error.details


@pytest.mark.parametrize(
    ("expected", "printed"),
    [("1.0.0", "0.4.0"), ("0.3.1", "1.1.0"), ("0.1.0", "1.0.0"), ("1.1.0", 1.1), ("0.4.0", None)],
)
def test_an_add_result_of_another_version_is_101_naming_delegate_and_both_versions(
    expected: str, printed: object
) -> None:
    stdout = json.dumps({**ADD_RESULT, "cniVersion": printed}).encode()
    result = interpret("macvlan", "ADD", outcome(0, stdout), expected)
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 101
    assert "'macvlan'" in error.msg
    assert repr(printed) in error.msg
    assert repr(expected) in error.msg


def test_a_huge_version_string_is_quoted_short() -> None:
    stdout = json.dumps({"cniVersion": "9" * 100_000}).encode()
    result = interpret("bridge", "ADD", outcome(0, stdout), "1.0.0")
    assert isinstance(result, Failure)
    assert len(result.failure().msg) < 200


@settings(max_examples=200)
@given(st.sampled_from(SPEC_VERSIONS), st.sampled_from(SPEC_VERSIONS), st.sampled_from(COMMANDS))
def test_only_an_add_result_is_held_to_the_expected_version(
    expected: str, printed: str, command: str
) -> None:
    answer = {**ADD_RESULT, "cniVersion": printed}
    result = interpret("bridge", command, outcome(0, json.dumps(answer)), expected)
    if command == "ADD" and printed != expected:
        assert isinstance(result, Failure)
        assert result.failure().code == 101
    elif command in ("ADD", "VERSION"):
        assert result == Success(answer)
    else:
        assert result == Success(None)


@pytest.mark.parametrize("answer", [{"ips": []}, {"cniVersion": "", "ips": []}])
def test_an_add_result_without_a_version_is_read_in_the_configurations(
    answer: JsonObject,
) -> None:
    # libcni fills a missing or empty result cniVersion in with the configuration's.
    assert interpret("bridge", "ADD", outcome(0, json.dumps(answer)), "1.0.0") == Success(answer)


def test_without_an_expected_version_any_result_is_the_result() -> None:
    answer = {**ADD_RESULT, "cniVersion": "0.2.0"}
    assert interpret("bridge", "ADD", outcome(0, json.dumps(answer))) == Success(answer)


def test_an_error_object_with_code_0_is_not_passed_on_as_success() -> None:
    stdout = json.dumps({"code": 0, "msg": "failed to find plugin", "details": "d"}).encode()
    result = interpret("bridge", "ADD", Outcome(1, stdout, b""))
    assert isinstance(result, Failure)
    error = result.failure()
    assert error.code == 101
    assert "failed to find plugin" in error.msg
    assert error.details == "d"
