"""Hostile input, bounded for CI (issue part 3; the long run is campaign_hostile.py).

- 2,000 hypothesis cases in-process through ``shell.main.run`` and 60 through
  the installed executable, every one checked against the invariants of
  reliability/hostile.py;
- the named hostile inputs as explicit examples through the executable, each
  with the code the spec gives it: path traversal through the container ID,
  ifname, network name, plugin types, dataDir and subnetFile; 10 MB of
  stdin; deep nesting; NaN and Infinity; duplicate keys; non-UTF-8 bytes;
  a subnet.env that is huge, binary, endless or a directory;
- the checker itself, shown to catch each kind of violation.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reliability.hostile import (
    TEN_MB,
    Case,
    Ran,
    Sandbox,
    Tally,
    each_case,
    error_code,
    iter_violations,
    run_cases,
    violations,
)
from tests.conftest import flannel_executable

JsonObject = dict[str, Any]
IN_PROCESS_CASES = 2_000
EXECUTABLE_CASES = 60


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox in memory where there is /dev/shm (fsync costs nothing there)."""
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="flannel-hostile-", dir=where) as tmp:
        yield Sandbox(Path(tmp))


def run_campaign(sandbox: Sandbox, count: int, executable: str | None) -> Tally:
    return run_cases(sandbox, count, executable, rng_seed=20240601)


def test_bounded_campaign_in_process(sandbox: Sandbox) -> None:
    tally = run_campaign(sandbox, IN_PROCESS_CASES, None)
    assert tally.violation_count == 0, "\n".join(iter_violations(tally))
    assert tally.cases >= IN_PROCESS_CASES * 0.9
    # The cases reach every stage: refusals of each kind, successes, delegates' paths.
    assert {1, 4, 5, 6, 7, 11, 50} <= set(tally.codes), tally.codes
    assert tally.successes >= IN_PROCESS_CASES // 20
    assert tally.expected_refusals >= IN_PROCESS_CASES // 4


def test_bounded_campaign_through_the_executable(sandbox: Sandbox) -> None:
    tally = run_campaign(sandbox, EXECUTABLE_CASES, flannel_executable())
    assert tally.violation_count == 0, "\n".join(iter_violations(tally))
    assert tally.cases >= EXECUTABLE_CASES * 0.9
    assert tally.successes > 0


# ---------------------------------------------------------------- named hostile inputs


def env_for(sandbox: Sandbox, command: str = "ADD", **variables: str) -> dict[str, str]:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c0ffee0123456789",
        "CNI_NETNS": "/var/run/netns/cni-1",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(sandbox.bin),
        **sandbox.standin_env(),
    }
    env.update(variables)
    return env


def conf_for(sandbox: Sandbox, **keys: Any) -> JsonObject:
    conf: JsonObject = {
        "cniVersion": "1.0.0",
        "name": "cbr0",
        "type": "flannel",
        "subnetFile": f"{sandbox.flannel_dir}/subnet.env",
        "dataDir": sandbox.path("var/lib/cni/flannel"),
        "delegate": {"hairpinMode": True},
    }
    conf.update(keys)
    return {k: v for k, v in conf.items() if v is not None}


def nested(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def with_stdin(sandbox: Sandbox, text: str) -> bytes:
    """A configuration given as raw JSON text; ``{base}`` is the valid keys."""
    base = json.dumps(conf_for(sandbox))[1:-1]
    return text.replace("{base}", base).encode("utf-8", "surrogateescape")


# (id, env variables, stdin from the sandbox, expected code or None for success)
NAMED: list[tuple[str, dict[str, str], Any, int | None]] = [
    ("container-id-traversal", {"CNI_CONTAINERID": "../../etc/passwd"}, {}, 4),
    ("container-id-absolute", {"CNI_CONTAINERID": "/etc/passwd"}, {}, 4),
    ("container-id-non-utf8", {"CNI_CONTAINERID": "abc\udcff"}, {}, 4),
    ("ifname-traversal", {"CNI_IFNAME": "../eth0"}, {}, 4),
    ("ifname-dotdot", {"CNI_IFNAME": ".."}, {}, 4),
    ("command-garbage", {"CNI_COMMAND": "ADD; rm -rf /"}, {}, 4),
    ("netns-non-utf8", {"CNI_NETNS": "/var/run/netns/\udcff"}, {}, None),
    ("name-traversal", {}, {"name": "../../etc/passwd"}, 7),
    ("own-type-traversal", {}, {"type": "../decoy/evil"}, 7),
    ("delegate-type-traversal", {}, {"delegate": {"type": "../decoy/evil"}}, 7),
    ("delegate-type-absolute", {}, {"delegate": {"type": "/bin/sh"}}, 7),
    ("delegate-type-dotdot", {}, {"delegate": {"type": ".."}}, 7),
    ("ipam-type-traversal", {}, {"ipam": {"type": "../decoy/evil"}}, 7),
    ("data-dir-relative", {}, {"dataDir": "../../decoy"}, 7),
    ("data-dir-symlink", {}, {"dataDir": "<var/lib/cni/linked>"}, 5),
    ("data-dir-a-file", {}, {"dataDir": "<var/lib/cni/a-file>"}, 5),
    ("data-dir-dotdot-inside", {}, {"dataDir": "<var/lib/cni/../cni/flannel2>"}, None),
    ("subnet-file-relative", {}, {"subnetFile": "run/flannel/subnet.env"}, 7),
    ("subnet-file-traversal-to-decoy", {}, {"subnetFile": "<run/flannel/../../decoy/keep>"}, 6),
    ("subnet-file-traversal-valid", {}, {"subnetFile": "<run/../run/flannel/subnet.env>"}, None),
    ("subnet-env-huge", {}, {"subnetFile": "<run/flannel/huge.env>"}, 6),
    ("subnet-env-binary", {}, {"subnetFile": "<run/flannel/binary.env>"}, 6),
    ("subnet-env-directory", {}, {"subnetFile": "<run/flannel/directory.env>"}, 5),
    ("subnet-env-missing", {}, {"subnetFile": "<run/flannel/missing.env>"}, 11),
    ("subnet-env-endless", {}, {"subnetFile": "/dev/zero"}, 5),  # not a regular file
    ("stdin-10mb-garbage", {}, b"x" * TEN_MB, 6),
    ("stdin-10mb-invalid-utf8", {}, b'{"name": "' + b"\xc3" * TEN_MB + b'"}', 6),
    ("stdin-10mb-of-brackets", {}, b"[" * TEN_MB, 6),
    ("stdin-nested-100000", {}, nested(100_000), 6),
    ("stdin-nested-65", {}, nested(65), 6),
    ("stdin-nan", {}, '{{base}, "mtu": NaN}', 6),
    ("stdin-infinity", {}, '{{base}, "mtu": Infinity}', 6),
    ("stdin-minus-infinity", {}, '{{base}, "mtu": -Infinity}', 6),
    ("stdin-overflowing-float", {}, '{{base}, "mtu": 1e400}', 6),
    ("stdin-5000-digit-int", {}, '{{base}, "mtu": ' + "9" * 5000 + "}", 6),
    ("stdin-non-utf8", {}, b'{"name": "cbr\xff0"}', 6),
    ("stdin-utf8-bom", {}, b"\xef\xbb\xbf{}", 6),
    ("stdin-two-objects", {}, "{{base}} {{base}}", 6),
    ("stdin-nul", {}, b"\x00" * 1000, 6),
    ("stdin-empty", {}, b"", 6),
    ("duplicate-name-bad-last", {}, '{{base}, "name": "../../etc/passwd"}', 7),
    ("duplicate-name-good-last", {}, '{"name": "../../etc/passwd", {base}}', None),
    ("duplicate-delegate-bad-last", {}, '{{base}, "delegate": {"type": "../decoy/evil"}}', 7),
    ("lone-surrogate-in-name", {}, '{{base}, "name": "cbr\\ud8000"}', 7),
    ("lone-surrogate-in-delegate", {}, '{{base}, "delegate": {"note": "\\udc00"}}', None),
]


def materialise(sandbox: Sandbox, stdin: Any) -> bytes:
    if isinstance(stdin, bytes):
        return stdin
    if isinstance(stdin, str):
        return with_stdin(sandbox, stdin)
    keys = {
        key: sandbox.path(value[1:-1])
        if isinstance(value, str) and value.startswith("<")
        else value
        for key, value in stdin.items()
    }
    return json.dumps(conf_for(sandbox, **keys)).encode()


@pytest.mark.parametrize(
    ("variables", "stdin", "code"), [pytest.param(*n[1:], id=n[0]) for n in NAMED]
)
def test_named_hostile_input_through_the_executable(
    sandbox: Sandbox, variables: dict[str, str], stdin: Any, code: int | None
) -> None:
    expect = None if code is None else frozenset({code})
    case = Case("named", env_for(sandbox, **variables), materialise(sandbox, stdin), expect)
    ran, problems = each_case(sandbox, case, flannel_executable())
    assert problems == [], (problems, ran.stdout[:500], ran.stderr[-500:])
    assert error_code(ran) == code, ran.stdout[:500]
    if code is None:
        assert ran.executed == ("bridge",)  # the valid ones reach the delegate, once
        assert "cniVersion" in json.loads(ran.stdout)
    else:
        assert ran.executed == ()
        assert (sandbox.decoy / "keep").read_text().startswith("a decoy")


def test_named_inputs_cover_what_the_issue_lists() -> None:
    names = " ".join(n[0] for n in NAMED)
    for topic in (
        "container-id-traversal",
        "ifname-traversal",
        "name-traversal",
        "delegate-type-traversal",
        "data-dir",
        "subnet-file-traversal",
        "stdin-10mb",
        "nested",
        "nan",
        "infinity",
        "duplicate",
        "non-utf8",
        "subnet-env-huge",
        "subnet-env-binary",
        "subnet-env-directory",
    ):
        assert topic in names, topic


def test_a_traversing_data_dir_that_stays_inside_is_used_and_released(sandbox: Sandbox) -> None:
    conf = conf_for(sandbox, dataDir=sandbox.path("var/lib/cni/../cni/flannel2"))
    env = env_for(sandbox)
    exe = flannel_executable()
    ran, problems = each_case(sandbox, Case("named", env, json.dumps(conf).encode()), exe)
    assert (problems, ran.status) == ([], 0)
    assert os.listdir(sandbox.path("var/lib/cni/flannel2")) == ["c0ffee0123456789:eth0"]
    delete = Case("named", {**env, "CNI_COMMAND": "DEL"}, json.dumps(conf).encode())
    ran, problems = each_case(sandbox, delete, exe)
    assert (problems, ran.status) == ([], 0)
    assert os.listdir(sandbox.path("var/lib/cni/flannel2")) == []


# ---------------------------------------------------------------- the checker catches


def checked(sandbox: Sandbox, case: Case, ran: Ran, change: str | None = None) -> list[str]:
    before = sandbox.snapshot()
    if change == "create":
        (sandbox.root / "etc" / "planted").write_text("x")
    elif change == "remove":
        (sandbox.decoy / "keep").unlink()
    elif change == "inside":
        Path(sandbox.path("var/lib/cni/flannel")).mkdir(parents=True)
        Path(sandbox.path("var/lib/cni/flannel/rec")).write_text("{}")
    return violations(sandbox, case, ran, before, sandbox.snapshot())


ERROR_7 = '{"cniVersion": "1.0.0", "code": 7, "msg": "bad", "details": ""}\n'


def test_the_checker_accepts_a_clean_refusal_and_a_change_inside_data_dir(
    sandbox: Sandbox,
) -> None:
    conf = json.dumps(conf_for(sandbox)).encode()
    case = Case("self", env_for(sandbox), conf, frozenset({7}))
    assert checked(sandbox, case, Ran(1, ERROR_7, "", ())) == []
    assert checked(sandbox, case, Ran(1, ERROR_7, "", ()), "inside") == []


@pytest.mark.parametrize(
    ("ran", "change", "expect", "complaint"),
    [
        (Ran(1, ERROR_7, "Traceback (most recent call last):", ()), None, None, "traceback"),
        (Ran(0, ERROR_7, "", ()), None, None, "exit 0 with an error object"),
        (Ran(1, "", "", ()), None, None, "without an error object"),
        (Ran(2, ERROR_7, "", ()), None, None, "exit status 2"),
        (Ran(1, ERROR_7 + ERROR_7, "", ()), None, None, "not one line"),
        (Ran(1, '{"code": 7}\n', "", ()), None, None, "error object keys"),
        (Ran(1, ERROR_7.replace('"bad"', "5"), "", ()), None, None, "malformed"),
        (Ran(1, ERROR_7, "", ()), None, frozenset({4}), "the spec says one of [4]"),
        (Ran(1, ERROR_7, "", ("bridge",)), None, frozenset({7}), "refused before rendering"),
        (Ran(1, ERROR_7, "", ("evil",)), None, None, "not a delegate in CNI_PATH"),
        (Ran(1, ERROR_7, "", ()), "create", None, "etc/planted created outside dataDir"),
        (Ran(1, ERROR_7, "", ()), "remove", None, "decoy/keep removed or changed"),
    ],
)
def test_the_checker_catches(
    sandbox: Sandbox, ran: Ran, change: str | None, expect: frozenset[int] | None, complaint: str
) -> None:
    case = Case("self", env_for(sandbox), json.dumps(conf_for(sandbox)).encode(), expect)
    problems = checked(sandbox, case, ran, change)
    assert any(complaint in problem for problem in problems), problems


def test_the_checker_catches_a_failed_valid_input_and_a_delegate_run_for_version(
    sandbox: Sandbox,
) -> None:
    valid = Case("self", env_for(sandbox), b"{}", None, succeed=True)
    assert any("valid input failed" in p for p in checked(sandbox, valid, Ran(1, ERROR_7, "", ())))
    version = Case("self", env_for(sandbox, "VERSION"), b"", None)
    answer = '{"cniVersion": "1.1.0", "supportedVersions": ["1.1.0"]}\n'
    problems = checked(sandbox, version, Ran(0, answer, "", ("bridge",)))
    assert any("VERSION" in p for p in problems), problems
