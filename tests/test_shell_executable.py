"""The installed ``flannel`` executable, run as a runtime runs it (spec §2).

The delegates are the stand-in scripts in a temporary CNI_PATH; they record
every invocation, so these tests see exactly what a real delegate would get.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from core.records import record_name
from tests.conftest import (
    CONTAINER_ID,
    IFNAME,
    PREV_RESULT,
    SUBNET_ENV_MOVED,
    JsonObject,
    Node,
    RunPlugin,
    all_files,
    flannel_executable,
)
from tests.standin_plugin import ALL_VERSIONS, default_result

RECORD = record_name(CONTAINER_ID, IFNAME)
PASSED_THROUGH = ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")


def test_the_executable_is_installed() -> None:
    assert Path(flannel_executable()).is_file()


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del_cycle(version: str, run_executable: RunPlugin, node: Node) -> None:
    env = node.env("ADD", STANDIN_MARK="from-the-runtime")
    add = run_executable(env, node.netconf(version))
    stored = json.loads(node.records()[RECORD])
    assert add.result() == default_result(stored)
    assert add.result()["cniVersion"] == version

    check_env = {**env, "CNI_COMMAND": "CHECK"}
    run_executable(check_env, node.netconf(version, prevResult=PREV_RESULT)).silent_success()
    del_env = {**env, "CNI_COMMAND": "DEL"}
    run_executable(del_env, node.netconf(version, prevResult=PREV_RESULT)).silent_success()

    calls = node.standin.calls()
    assert [(c["plugin"], c["command"]) for c in calls] == [
        ("bridge", "ADD"),
        ("bridge", "CHECK"),
        ("bridge", "DEL"),
    ]
    for call in calls:
        assert call["env"]["CNI_COMMAND"] == call["command"]
        assert call["env"]["STANDIN_MARK"] == "from-the-runtime"
        for name in PASSED_THROUGH:
            assert call["env"][name] == env[name], name
    assert calls[0]["config"] == stored
    assert calls[1]["config"] == {**stored, "prevResult": PREV_RESULT}
    assert calls[2]["config"] == {**stored, "prevResult": PREV_RESULT}
    assert node.records() == {}


def test_add_and_del_cycle_of_a_0_3_1_config(run_executable: RunPlugin, node: Node) -> None:
    """The canonical kube-flannel conflist (spec §1) speaks 0.3.1."""
    conf = node.netconf("0.3.1")
    assert run_executable(node.env("ADD"), conf).result()["cniVersion"] == "0.3.1"
    stored = json.loads(node.records()[RECORD])
    assert stored["hairpinMode"] is True
    run_executable(node.env("DEL", CNI_NETNS=""), conf).silent_success()
    assert [c["command"] for c in node.standin.calls()] == ["ADD", "DEL"]
    assert node.standin.calls("DEL")[0]["config"] == stored
    assert node.standin.calls("DEL")[0]["netns"] == ""
    assert node.records() == {}


def test_delegate_stderr_reaches_the_plugins_stderr(run_executable: RunPlugin, node: Node) -> None:
    node.standin.script({"ADD": {"stderr": "bridge: set up cni0 for 10.244.7.0/24\n"}})
    run = run_executable(node.env("ADD"), node.netconf())
    run.result()
    assert "bridge: set up cni0 for 10.244.7.0/24" in run.stderr
    assert "bridge: set up cni0" not in run.stdout


def test_version_with_empty_stdin_and_no_other_variable(run_executable: RunPlugin) -> None:
    run = run_executable({"CNI_COMMAND": "VERSION"}, b"")
    assert run.result() == {"cniVersion": "1.1.0", "supportedVersions": ALL_VERSIONS}


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_version_answers_in_the_requested_version(version: str, run_executable: RunPlugin) -> None:
    run = run_executable({"CNI_COMMAND": "VERSION"}, {"cniVersion": version})
    assert run.result() == {"cniVersion": version, "supportedVersions": ALL_VERSIONS}


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("ADD", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]),
        ("CHECK", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]),
        ("DEL", ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]),
        ("GC", ["CNI_PATH"]),
        ("STATUS", ["CNI_PATH"]),
    ],
)
def test_invalid_environment_is_4_and_lists_every_missing_variable(
    command: str, missing: list[str], run_executable: RunPlugin, node: Node
) -> None:
    env = {"CNI_COMMAND": command, **node.standin.env()}
    error = run_executable(env, node.netconf("1.1.0")).error()
    assert error["code"] == 4
    for name in missing:
        assert name in error["msg"], name
    assert node.standin.calls() == []


@pytest.mark.parametrize("command", [None, ""])
def test_missing_cni_command_is_4(
    command: str | None, run_executable: RunPlugin, node: Node
) -> None:
    error = run_executable(node.env("ADD", CNI_COMMAND=command), node.netconf()).error()
    assert error["code"] == 4
    assert "CNI_COMMAND" in error["msg"]
    assert node.standin.calls() == []


@pytest.mark.parametrize("command", ["ADD", "CHECK", "DEL"])
@pytest.mark.parametrize(
    "setting",
    [
        ("CNI_CONTAINERID", "../../x"),
        ("CNI_CONTAINERID", "../../../../../../etc/flannel-test"),
        ("CNI_CONTAINERID", "/abs"),
        ("CNI_IFNAME", "../x"),
        ("CNI_IFNAME", ".."),
    ],
)
def test_path_traversal_is_4_and_creates_nothing(
    command: str, setting: tuple[str, str], run_executable: RunPlugin, node: Node, tmp_path: Path
) -> None:
    variable, value = setting
    node.data_dir.mkdir(parents=True)
    before = all_files(tmp_path)
    error = run_executable(node.env(command, **{variable: value}), node.netconf()).error()
    assert error["code"] == 4
    assert variable in error["msg"]
    assert all_files(tmp_path) == before
    assert node.standin.calls() == []


def _missing_subnet_env(node: Node) -> JsonObject:
    node.subnet_env.remove()
    return node.netconf("1.1.0")


def _moved_subnet(node: Node) -> JsonObject:
    record = {"name": "cbr0", "type": "bridge", "ipam": {"subnet": "10.244.7.0/24"}}
    node.data_dir.mkdir(parents=True)
    (node.data_dir / RECORD).write_text(json.dumps(record))
    node.subnet_env.write(SUBNET_ENV_MOVED)
    return node.netconf(prevResult=PREV_RESULT)


def _failing_del(node: Node) -> JsonObject:
    node.data_dir.mkdir(parents=True)
    (node.data_dir / RECORD).write_text(json.dumps({"name": "cbr0", "type": "bridge"}))
    node.standin.script({"DEL": {"exit": 1, "stdout": "{}"}})
    return node.netconf()


def _symlinked_data_dir(node: Node) -> JsonObject:
    node.data_dir.parent.mkdir(parents=True)
    node.data_dir.symlink_to(node.subnet_env.path.parent)
    return node.netconf()


def _script(steps: JsonObject, **keys: object) -> Callable[[Node], JsonObject]:
    def prepare(node: Node) -> JsonObject:
        node.standin.script(steps)
        return node.netconf("1.1.0", **keys)

    return prepare


def _failure(
    command: str, prepare: Callable[[Node], JsonObject | bytes], code: int, name: str
) -> object:
    return pytest.param(command, prepare, code, id=f"{command}-{name}")


NO_ATTACHMENTS: JsonObject = {"cni.dev/valid-attachments": []}
FAILURES = [
    _failure("ADD", lambda node: b"", 6, "empty-stdin"),
    _failure("ADD", lambda node: b"{not json", 6, "bad-json"),
    _failure("ADD", lambda node: b"\xff\xfe", 6, "not-utf8"),
    _failure("ADD", lambda node: b"[" * 100_000, 6, "deeply-nested"),
    _failure("ADD", lambda node: b'"a string"', 6, "not-an-object"),
    _failure("ADD", lambda node: node.netconf("9.9.9"), 1, "unknown-version"),
    _failure("ADD", lambda node: node.netconf(name="../etc"), 7, "bad-name"),
    _failure("ADD", lambda node: node.netconf(delegate={"type": "../sh"}), 7, "type-with-slash"),
    _failure("ADD", lambda node: node.netconf(delegate={"name": "x"}), 7, "delegate-name"),
    _failure("ADD", lambda node: node.netconf(dataDir="relative"), 7, "relative-data-dir"),
    _failure("ADD", lambda node: node.netconf(delegate={"type": "sriov"}), 100, "no-delegate"),
    _failure("ADD", _missing_subnet_env, 11, "no-subnet-env"),
    _failure("ADD", _symlinked_data_dir, 5, "symlinked-data-dir"),
    _failure("ADD", _script({"ADD": {"error": {"code": 42, "msg": "no"}}}), 42, "delegate-error"),
    _failure("ADD", _script({"ADD": {"stdout": "garbage"}}), 101, "delegate-garbage"),
    _failure("ADD", _script({"ADD": {"exit": 3, "stderr": "panic"}}), 101, "delegate-exit-3"),
    _failure("ADD", _script({"ADD": {"signal": 9}}), 101, "delegate-killed"),
    _failure("CHECK", lambda node: node.netconf("0.3.1"), 1, "before-0.4.0"),
    _failure("CHECK", lambda node: node.netconf(prevResult=PREV_RESULT), 3, "no-record"),
    _failure("CHECK", _moved_subnet, 102, "drift"),
    _failure("DEL", _failing_del, 101, "delegate-exit-1"),
    _failure("DEL", _symlinked_data_dir, 5, "symlinked-data-dir"),
    _failure("STATUS", lambda node: node.netconf("1.0.0"), 1, "before-1.1.0"),
    _failure("STATUS", _missing_subnet_env, 50, "no-subnet-env"),
    _failure("STATUS", _script({"STATUS": {"error": {"code": 51, "msg": "x"}}}), 51, "delegate"),
    _failure("GC", lambda node: node.netconf("1.1.0"), 7, "no-valid-attachments"),
    _failure(
        "GC", _script({"GC": {"error": {"code": 5, "msg": "gc"}}}, **NO_ATTACHMENTS), 5, "delegate"
    ),
    _failure("BOGUS", lambda node: node.netconf(), 4, "unknown-command"),
]


@pytest.mark.parametrize(("command", "prepare", "code"), FAILURES)
def test_every_failure_prints_exactly_one_error_object(
    command: str,
    prepare: Callable[[Node], JsonObject | bytes],
    code: int,
    run_executable: RunPlugin,
    node: Node,
) -> None:
    run = run_executable(node.env(command), prepare(node))
    error = run.error()  # exactly one object, the four keys, non-zero exit
    assert error["code"] == code
    assert error["msg"]
    assert "Traceback" not in run.stdout + run.stderr


def test_a_runtime_that_closes_stdin_gets_a_decode_error(node: Node) -> None:
    done = subprocess.run(
        [flannel_executable()],
        stdin=subprocess.DEVNULL,
        env=node.env("ADD"),
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert done.returncode != 0
    assert json.loads(done.stdout)["code"] == 6
    assert b"Traceback" not in done.stdout + done.stderr
