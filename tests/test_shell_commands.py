"""Every command's logic, in-process through shell.main.run (spec §2, §5, §6).

The delegates are the stand-ins of ``standin_plugin``, answered in-process by
an injected runner, so no process is started here; test_shell_executable runs
the real executable.
"""

from __future__ import annotations

import builtins
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from core.delegate_output import Outcome
from core.records import (
    NETNS_ATTRIBUTE,
    TEMP_ABANDONED_AFTER_SECONDS,
    legacy_record_name,
    record_name,
)
from shell.spawn import DelegateIOError
from shell.store import MAX_RECORD_BYTES
from tests.conftest import (
    CONTAINER_ID,
    IFNAME,
    NETNS,
    PREV_RESULT,
    SUBNET_ENV_DUAL,
    SUBNET_ENV_MOVED,
    JsonObject,
    NetconfFactory,
    Node,
    PluginRun,
    RunPlugin,
    StandinRunner,
    SubnetEnv,
    records,
)

ALL_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
BEFORE_CHECK = ALL_VERSIONS[:4]
WITH_CHECK = ALL_VERSIONS[4:]
BEFORE_1_1 = ALL_VERSIONS[:6]
RECORD = record_name(CONTAINER_ID, IFNAME)
VALID = "cni.dev/valid-attachments"

ADD_ERROR: JsonObject = {
    "code": 42,
    "msg": "failed to set up the bridge",
    "details": "EPERM on cni0",
}
DEL_ERROR: JsonObject = {"code": 11, "msg": "netns is busy", "details": "try again"}

# What the Go plugin stores: the bare delegate config, named after the container ID.
GO_RECORD: JsonObject = {
    "cniVersion": "0.3.1",
    "name": "cbr0",
    "type": "bridge",
    "hairpinMode": True,
    "isDefaultGateway": True,
    "isGateway": True,
    "ipMasq": False,
    "mtu": 1450,
    "ipam": {
        "type": "host-local",
        "subnet": "10.244.7.0/24",
        "routes": [{"dst": "10.244.0.0/16"}],
    },
}


def stored(data_dir: Path, name: str = RECORD) -> JsonObject:
    value = json.loads(records(data_dir)[name])
    assert isinstance(value, dict)
    return value


def without_prev_result(config: JsonObject) -> JsonObject:
    return {k: v for k, v in config.items() if k != "prevResult"}


def added(run_plugin: RunPlugin, env: Mapping[str, str], conf: JsonObject) -> PluginRun:
    run = run_plugin(env, conf)
    run.result()
    return run


def write_record(data_dir: Path, name: str, data: bytes) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / name).write_bytes(data)


# -- ADD ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [*ALL_VERSIONS, None])
def test_add_stores_what_it_sends_and_prints_the_delegates_result(
    version: str | None, run_plugin: RunPlugin, node: Node
) -> None:
    result = {"cniVersion": version or "0.1.0", "ips": [], "from": "the delegate"}
    node.standin.script({"ADD": {"stdout": result}})
    run = run_plugin(node.env("ADD"), node.netconf(version))
    assert run.result() == result
    [call] = node.standin.calls()
    assert (call["plugin"], call["command"]) == ("bridge", "ADD")
    assert call["config"].get("cniVersion") == version
    assert call["config"]["name"] == "cbr0"
    assert call["config"]["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24"}]]
    assert list(node.records()) == [RECORD]
    assert stored(node.data_dir) == call["config"]


def test_add_passes_prev_result_on_but_never_stores_it(run_plugin: RunPlugin, node: Node) -> None:
    runtime_config = {"portMappings": [{"hostPort": 8080, "containerPort": 80}]}
    added(
        run_plugin,
        node.env("ADD"),
        node.netconf(prevResult=PREV_RESULT, runtimeConfig=runtime_config),
    )
    [call] = node.standin.calls()
    assert call["config"]["prevResult"] == PREV_RESULT
    assert call["config"]["runtimeConfig"] == runtime_config
    assert "prevResult" not in stored(node.data_dir)
    assert stored(node.data_dir) == without_prev_result(call["config"])


def test_add_stores_the_record_before_executing_the_delegate(
    run_plugin: RunPlugin, node: Node
) -> None:
    seen: list[set[str]] = []
    inner = StandinRunner()

    def runner(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        seen.append(set(node.records()))
        return inner(executable, env, stdin)

    run_plugin(node.env("ADD"), node.netconf(), runner).result()
    assert seen == [{RECORD}]


def test_add_executes_the_configured_delegate_type_with_the_runtimes_environment(
    run_plugin: RunPlugin, node: Node
) -> None:
    env = node.env("ADD", STANDIN_MARK="passed-through")
    added(run_plugin, env, node.netconf(delegate={"type": "ipvlan", "master": "eth0"}))
    [call] = node.standin.calls()
    assert call["plugin"] == "ipvlan"
    assert call["env"] == {k: v for k, v in env.items() if k.startswith(("CNI_", "STANDIN_"))}
    assert stored(node.data_dir)["master"] == "eth0"
    assert "isGateway" not in stored(node.data_dir)


def test_add_uses_the_first_delegate_in_cni_path(
    run_plugin: RunPlugin, node: Node, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    (first / "bridge").write_text("#!/bin/sh\nexit 0\n")
    (first / "bridge").chmod(0o755)
    executed: list[str] = []
    inner = StandinRunner()

    def runner(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        executed.append(executable)
        return inner(executable, env, stdin)

    env = node.env("ADD", CNI_PATH=f"/nonexistent:{first}:{node.standin.directory}")
    run_plugin(env, node.netconf(), runner).result()
    assert executed == [str(first / "bridge")]


def test_two_interfaces_of_one_container_keep_two_records(
    run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD", CNI_IFNAME="eth0"), node.netconf())
    added(
        run_plugin, node.env("ADD", CNI_IFNAME="eth1"), node.netconf(delegate={"type": "macvlan"})
    )
    assert set(node.records()) == {
        record_name(CONTAINER_ID, "eth0"),
        record_name(CONTAINER_ID, "eth1"),
    }
    eth1 = stored(node.data_dir, record_name(CONTAINER_ID, "eth1"))
    run_plugin(node.env("DEL", CNI_IFNAME="eth1"), node.netconf()).silent_success()
    [call] = node.standin.calls("DEL")
    assert (call["plugin"], call["ifname"], call["config"]) == ("macvlan", "eth1", eth1)
    assert set(node.records()) == {record_name(CONTAINER_ID, "eth0")}


def test_add_of_a_dual_stack_node_stores_both_ranges(run_plugin: RunPlugin, node: Node) -> None:
    node.subnet_env.write(SUBNET_ENV_DUAL)
    added(run_plugin, node.env("ADD"), node.netconf())
    assert stored(node.data_dir)["ipam"]["ranges"] == [
        [{"subnet": "10.244.7.0/24"}],
        [{"subnet": "fd00:10:244:7::/64"}],
    ]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_failed_add_is_rolled_back_and_its_error_returned_unchanged(
    version: str, run_plugin: RunPlugin, node: Node
) -> None:
    node.standin.script({"ADD": {"error": ADD_ERROR, "stderr": "bridge: cannot create cni0\n"}})
    run = run_plugin(node.env("ADD"), node.netconf(version, prevResult=PREV_RESULT))
    assert run.error() == {"cniVersion": version, **ADD_ERROR}
    assert "bridge: cannot create cni0" in run.stderr
    add, delete = node.standin.calls()
    assert (add["command"], delete["command"]) == ("ADD", "DEL")
    assert delete["config"] == add["config"]
    for key in ("plugin", "containerid", "ifname", "netns", "args", "path"):
        assert delete[key] == add[key], key
    assert node.records() == {}


def test_failed_add_whose_rollback_fails_keeps_the_record_for_the_runtimes_del(
    run_plugin: RunPlugin, node: Node
) -> None:
    node.standin.script({"ADD": {"error": ADD_ERROR}, "DEL": [{"error": DEL_ERROR}, {}]})
    run = run_plugin(node.env("ADD"), node.netconf())
    assert run.error() == {"cniVersion": "1.0.0", **ADD_ERROR}
    assert RECORD in node.records()
    assert DEL_ERROR["msg"] in run.stderr
    assert f"record {RECORD} kept" in run.stderr
    add_config = node.standin.calls("ADD")[0]["config"]
    # The runtime's DEL after the failed ADD now releases what ADD took.
    run_plugin(node.env("DEL"), node.netconf()).silent_success()
    assert [c["config"] for c in node.standin.calls("DEL")] == [add_config, add_config]
    assert node.records() == {}


def test_add_refused_with_code_1_removes_the_record_even_if_del_fails(
    run_plugin: RunPlugin, node: Node
) -> None:
    incompatible = {"code": 1, "msg": "incompatible CNI versions", "details": "x"}
    node.standin.script({"ADD": {"error": incompatible}, "DEL": {"error": incompatible}})
    run = run_plugin(node.env("ADD"), node.netconf("1.1.0"))
    assert run.error() == {"cniVersion": "1.1.0", **incompatible}
    assert node.records() == {}


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ({"stdout": "this is not JSON"}, "not valid JSON"),
        ({"stdout": [1, 2]}, "must be a JSON object"),
        ({"exit": 2, "stderr": "panic: nil map\n"}, "exited with status 2"),
        ({"exit": 1, "stdout": "garbage", "stderr": "panic: nil map\n"}, "exited with status 1"),
        ({"exit": 1, "stdout": {"code": "7", "msg": "code is a string"}}, "exited with status 1"),
        ({"signal": 9}, "killed by SIGKILL"),
    ],
)
def test_add_with_unusable_delegate_output_is_101_and_rolled_back(
    step: JsonObject, says: str, run_plugin: RunPlugin, node: Node
) -> None:
    node.standin.script({"ADD": step})
    error = run_plugin(node.env("ADD"), node.netconf()).error()
    assert error["code"] == 101
    assert says in error["msg"]
    if "stderr" in step:
        assert "panic: nil map" in error["details"]
    assert [c["command"] for c in node.standin.calls()] == ["ADD", "DEL"]
    assert node.records() == {}


def test_add_with_the_delegate_missing_is_100_and_stores_nothing(
    run_plugin: RunPlugin, node: Node
) -> None:
    error = run_plugin(node.env("ADD"), node.netconf(delegate={"type": "sriov"})).error()
    assert error["code"] == 100
    assert "'sriov'" in error["msg"]
    assert str(node.standin.directory) in error["msg"]
    assert node.standin.calls() == []
    assert not node.data_dir.exists()


def test_add_with_a_delegate_that_is_not_executable_is_100(
    run_plugin: RunPlugin, node: Node
) -> None:
    (node.standin.directory / "vlan").write_text("#!/bin/sh\n")
    (node.standin.directory / "vlan").chmod(0o644)
    error = run_plugin(node.env("ADD"), node.netconf(delegate={"type": "vlan"})).error()
    assert error["code"] == 100
    assert "not executable" in error["msg"]
    assert not node.data_dir.exists()


def test_add_whose_delegate_cannot_be_executed_is_100(run_plugin: RunPlugin, node: Node) -> None:
    def runner(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        raise PermissionError(13, "Permission denied")

    error = run_plugin(node.env("ADD"), node.netconf(), runner).error()
    assert error["code"] == 100
    assert "Permission denied" in error["msg"]


SUBNET_ENV_PROBLEMS = [
    pytest.param("missing", 11, id="missing"),
    pytest.param("FLANNEL_NETWORK=10.244.0.0/16\n", 11, id="incomplete"),
    pytest.param(
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=banana\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        6,
        id="malformed",
    ),
    pytest.param("directory", 5, id="directory"),
]


def break_subnet_env(subnet_env: SubnetEnv, how: str) -> None:
    if how in ("missing", "directory"):
        subnet_env.remove()
        if how == "directory":
            subnet_env.path.mkdir()
    else:
        subnet_env.write(how)


@pytest.mark.parametrize(("how", "code"), SUBNET_ENV_PROBLEMS)
def test_add_with_an_unusable_subnet_env_stores_and_executes_nothing(
    how: str, code: int, run_plugin: RunPlugin, node: Node
) -> None:
    break_subnet_env(node.subnet_env, how)
    error = run_plugin(node.env("ADD"), node.netconf()).error()
    assert error["code"] == code
    assert str(node.subnet_env.path) in error["msg"]
    assert node.standin.calls() == []
    assert not node.data_dir.exists()


def test_incomplete_subnet_env_names_every_missing_key(run_plugin: RunPlugin, node: Node) -> None:
    node.subnet_env.write("FLANNEL_NETWORK=10.244.0.0/16\n")
    error = run_plugin(node.env("ADD"), node.netconf()).error()
    for key in ("FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"):
        assert key in error["msg"]


def test_add_with_a_symlinked_data_dir_is_5_and_executes_nothing(
    run_plugin: RunPlugin, node: Node, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    node.data_dir.parent.mkdir(parents=True)
    node.data_dir.symlink_to(elsewhere)
    assert run_plugin(node.env("ADD"), node.netconf()).error()["code"] == 5
    assert node.standin.calls() == []
    assert list(elsewhere.iterdir()) == []


def test_add_with_an_invalid_delegate_config_is_7(run_plugin: RunPlugin, node: Node) -> None:
    conf = node.netconf(delegate={"name": "other", "hairpinMode": True})
    assert run_plugin(node.env("ADD"), conf).error()["code"] == 7
    assert node.standin.calls() == []


# -- DEL --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_del_replays_the_stored_record_with_prev_result_then_removes_it(
    version: str, run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf(version))
    record = stored(node.data_dir)
    node.subnet_env.write(SUBNET_ENV_MOVED)  # a replay, not a re-rendering
    run_plugin(node.env("DEL"), node.netconf(version, prevResult=PREV_RESULT)).silent_success()
    [call] = node.standin.calls("DEL")
    assert call["config"] == {**record, "prevResult": PREV_RESULT}
    assert (call["containerid"], call["ifname"], call["netns"]) == (CONTAINER_ID, IFNAME, NETNS)
    assert node.records() == {}


def test_del_with_an_empty_netns_replays_the_record(run_plugin: RunPlugin, node: Node) -> None:
    added(run_plugin, node.env("ADD"), node.netconf())
    run_plugin(node.env("DEL", CNI_NETNS=""), node.netconf()).silent_success()
    [call] = node.standin.calls("DEL")
    assert call["netns"] == ""
    assert node.records() == {}


def test_del_removes_the_record_only_after_the_delegate_ran(
    run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf())
    seen: list[set[str]] = []
    inner = StandinRunner()

    def runner(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        seen.append(set(node.records()))
        return inner(executable, env, stdin)

    run_plugin(node.env("DEL"), node.netconf(), runner).silent_success()
    assert seen == [{RECORD}]
    assert node.records() == {}


def test_failed_del_keeps_the_record_and_a_retry_removes_it(
    run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf())
    record = stored(node.data_dir)
    node.standin.script({"DEL": [{"error": DEL_ERROR}, {}]})
    first = run_plugin(node.env("DEL"), node.netconf())
    assert first.error() == {"cniVersion": "1.0.0", **DEL_ERROR}
    assert stored(node.data_dir) == record
    run_plugin(node.env("DEL"), node.netconf()).silent_success()
    assert [c["config"] for c in node.standin.calls("DEL")] == [record, record]
    assert node.records() == {}


def test_del_twice_succeeds_and_executes_the_delegate_once(
    run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf())
    run_plugin(node.env("DEL"), node.netconf()).silent_success()
    run_plugin(node.env("DEL"), node.netconf()).silent_success()
    assert len(node.standin.calls("DEL")) == 1


@pytest.mark.parametrize("state", ["no data dir", "other records", "no subnet.env"])
def test_del_without_a_record_executes_nothing_and_succeeds(
    state: str, run_plugin: RunPlugin, node: Node
) -> None:
    if state == "other records":
        added(run_plugin, node.env("ADD", CNI_CONTAINERID="other0"), node.netconf())
    if state == "no subnet.env":
        node.subnet_env.remove()
    before = node.records()
    run_plugin(node.env("DEL"), node.netconf()).silent_success()
    assert node.standin.calls("DEL") == []
    assert node.records() == before
    if state == "no data dir":
        assert not node.data_dir.exists()


UNREADABLE_RECORDS = [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"type": "bridge", "name": ', id="truncated"),
    pytest.param(b"\xff\xfe garbage", id="not-utf8"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"bridge"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"name": "cbr0"}', id="no-type"),
    pytest.param(b'{"name": "cbr0", "type": "../../bin/sh"}', id="type-with-slash"),
]


@pytest.mark.parametrize("content", UNREADABLE_RECORDS)
def test_del_of_an_unreadable_record_uses_a_fresh_rendering_and_removes_it(
    content: bytes, run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf())
    rendering = stored(node.data_dir)
    write_record(node.data_dir, RECORD, content)
    run = run_plugin(node.env("DEL"), node.netconf(prevResult=PREV_RESULT))
    run.silent_success()
    [call] = node.standin.calls("DEL")
    assert call["config"] == {**rendering, "prevResult": PREV_RESULT}
    assert node.records() == {}
    assert f"removed unreadable state record {node.data_dir}/{RECORD}" in run.stderr


def test_del_fresh_rendering_reads_the_current_subnet_env(
    run_plugin: RunPlugin, node: Node
) -> None:
    write_record(node.data_dir, RECORD, b"{")
    node.subnet_env.write(SUBNET_ENV_MOVED)
    run_plugin(node.env("DEL"), node.netconf()).silent_success()
    [call] = node.standin.calls("DEL")
    assert call["config"]["ipam"]["ranges"] == [[{"subnet": "10.244.9.0/24"}]]
    assert node.records() == {}


def test_del_of_a_symlinked_record_removes_the_link_and_not_its_target(
    run_plugin: RunPlugin, node: Node, tmp_path: Path
) -> None:
    target = tmp_path / "target.json"
    target.write_bytes(json.dumps({**GO_RECORD, "type": "ptp"}).encode())
    node.data_dir.mkdir(parents=True)
    (node.data_dir / RECORD).symlink_to(target)
    run = run_plugin(node.env("DEL"), node.netconf())
    run.silent_success()
    [call] = node.standin.calls("DEL")
    assert call["plugin"] == "bridge"  # the target's "ptp" was not read
    assert not (node.data_dir / RECORD).is_symlink()
    assert json.loads(target.read_bytes())["type"] == "ptp"


@pytest.mark.parametrize("kind", ["fifo", "empty directory"])
def test_a_non_regular_record_does_not_block_del_forever(
    kind: str, run_plugin: RunPlugin, node: Node
) -> None:
    """Spec §5: an unreadable record never blocks DEL forever."""
    node.data_dir.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(node.data_dir / RECORD)
    else:
        (node.data_dir / RECORD).mkdir()
    first = run_plugin(node.env("DEL"), node.netconf())
    second = run_plugin(node.env("DEL"), node.netconf())
    assert "Traceback" not in first.stdout + first.stderr
    second.silent_success()
    assert node.standin.calls("DEL")[0]["config"]["type"] == "bridge"


def test_the_longest_attachment_names_fit_in_a_file_name(run_plugin: RunPlugin, node: Node) -> None:
    container_id = "f" * 239  # NAME_MAX 255 = 239 + ":" + a 15-byte ifname
    ifname = "\u00e9" * 7 + "x"  # 15 bytes of UTF-8
    env = {"CNI_CONTAINERID": container_id, "CNI_IFNAME": ifname}
    added(run_plugin, node.env("ADD", **env), node.netconf())
    assert list(node.records()) == [record_name(container_id, ifname)]
    run_plugin(node.env("DEL", **env), node.netconf()).silent_success()
    assert node.records() == {}
    too_long = run_plugin(node.env("ADD", CNI_CONTAINERID="f" * 240), node.netconf())
    assert too_long.error()["code"] == 4


@pytest.mark.parametrize("ifname", ["eth0", "net1"])
def test_del_replays_and_removes_a_go_plugin_record(
    ifname: str, run_plugin: RunPlugin, node: Node
) -> None:
    write_record(node.data_dir, legacy_record_name(CONTAINER_ID), json.dumps(GO_RECORD).encode())
    run_plugin(
        node.env("DEL", CNI_IFNAME=ifname), node.netconf(prevResult=PREV_RESULT)
    ).silent_success()
    [call] = node.standin.calls("DEL")
    assert call["config"] == {**GO_RECORD, "prevResult": PREV_RESULT}
    assert node.records() == {}


def test_del_with_a_symlinked_data_dir_is_5(
    run_plugin: RunPlugin, node: Node, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / RECORD).write_bytes(json.dumps(GO_RECORD).encode())
    node.data_dir.parent.mkdir(parents=True)
    node.data_dir.symlink_to(elsewhere)
    assert run_plugin(node.env("DEL"), node.netconf()).error()["code"] == 5
    assert node.standin.calls() == []
    assert (elsewhere / RECORD).exists()


# -- CHECK ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", WITH_CHECK)
def test_check_replays_the_record_with_prev_result(
    version: str, run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf(version))
    record = stored(node.data_dir)
    run_plugin(node.env("CHECK"), node.netconf(version, prevResult=PREV_RESULT)).silent_success()
    [call] = node.standin.calls("CHECK")
    assert call["config"] == {**record, "prevResult": PREV_RESULT}
    assert (call["containerid"], call["ifname"], call["netns"]) == (CONTAINER_ID, IFNAME, NETNS)
    assert stored(node.data_dir) == record


def test_check_states_route_gateways_in_the_prev_result_it_hands_on(
    run_plugin: RunPlugin, node: Node
) -> None:
    """README "Delegate quirks": only CHECK rewrites prevResult; DEL gets it as is."""
    prev = {
        **PREV_RESULT,
        "routes": [{"dst": "10.244.0.0/16"}, {"dst": "192.0.2.0/24", "gw": "10.244.7.254"}],
    }
    added(run_plugin, node.env("ADD"), node.netconf())
    record = stored(node.data_dir)
    run_plugin(node.env("CHECK"), node.netconf(prevResult=prev)).silent_success()
    run_plugin(node.env("DEL"), node.netconf(prevResult=prev)).silent_success()
    check, delete = node.standin.calls("CHECK")[0], node.standin.calls("DEL")[0]
    assert check["config"]["prevResult"]["routes"] == [
        {"dst": "10.244.0.0/16", "gw": "10.244.7.1"},
        {"dst": "192.0.2.0/24", "gw": "10.244.7.254"},
    ]
    assert without_prev_result(check["config"]) == record
    assert delete["config"] == {**record, "prevResult": prev}


@pytest.mark.parametrize("version", [*BEFORE_CHECK, None])
def test_check_of_a_config_before_0_4_0_is_incompatible(
    version: str | None, run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf(version))
    error = run_plugin(node.env("CHECK"), node.netconf(version, prevResult=PREV_RESULT)).error()
    assert error["code"] == 1
    assert "0.4.0" in error["msg"]
    assert node.standin.calls("CHECK") == []


@pytest.mark.parametrize("state", ["no data dir", "other records"])
def test_check_without_a_record_is_unknown_container(
    state: str, run_plugin: RunPlugin, node: Node
) -> None:
    if state == "other records":
        added(run_plugin, node.env("ADD", CNI_IFNAME="eth1"), node.netconf())
    error = run_plugin(node.env("CHECK"), node.netconf(prevResult=PREV_RESULT)).error()
    assert error["code"] == 3
    assert CONTAINER_ID in error["msg"]
    assert node.standin.calls("CHECK") == []


def test_check_after_the_subnet_moved_is_drift_and_skips_the_delegate(
    run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf())
    node.subnet_env.write(SUBNET_ENV_MOVED)
    error = run_plugin(node.env("CHECK"), node.netconf(prevResult=PREV_RESULT)).error()
    assert error["code"] == 102
    assert "10.244.7.0/24" in error["msg"]
    assert node.standin.calls("CHECK") == []


def test_check_passes_the_delegates_error_through(run_plugin: RunPlugin, node: Node) -> None:
    added(run_plugin, node.env("ADD"), node.netconf("1.1.0"))
    check_error = {"code": 77, "msg": "eth0 has no address 10.244.7.2", "details": "ip addr"}
    node.standin.script({"CHECK": {"error": check_error}})
    error = run_plugin(node.env("CHECK"), node.netconf("1.1.0", prevResult=PREV_RESULT)).error()
    assert error == {"cniVersion": "1.1.0", **check_error}


def test_check_of_a_go_plugin_record_replays_it_and_detects_drift(
    run_plugin: RunPlugin, node: Node
) -> None:
    write_record(node.data_dir, legacy_record_name(CONTAINER_ID), json.dumps(GO_RECORD).encode())
    run_plugin(node.env("CHECK"), node.netconf(prevResult=PREV_RESULT)).silent_success()
    [call] = node.standin.calls("CHECK")
    assert call["config"] == {**GO_RECORD, "prevResult": PREV_RESULT}
    node.subnet_env.write(SUBNET_ENV_MOVED)
    assert (
        run_plugin(node.env("CHECK"), node.netconf(prevResult=PREV_RESULT)).error()["code"] == 102
    )


def test_check_of_an_unreadable_record_is_a_decode_error(run_plugin: RunPlugin, node: Node) -> None:
    write_record(node.data_dir, RECORD, b"{garbage")
    error = run_plugin(node.env("CHECK"), node.netconf(prevResult=PREV_RESULT)).error()
    assert error["code"] == 6
    assert node.standin.calls() == []
    assert RECORD in node.records()  # CHECK changes nothing


def test_check_with_subnet_env_gone_is_try_again_later(run_plugin: RunPlugin, node: Node) -> None:
    added(run_plugin, node.env("ADD"), node.netconf())
    node.subnet_env.remove()
    assert run_plugin(node.env("CHECK"), node.netconf(prevResult=PREV_RESULT)).error()["code"] == 11
    assert node.standin.calls("CHECK") == []


# -- STATUS -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [*BEFORE_1_1, None])
def test_status_of_a_config_before_1_1_0_is_incompatible(
    version: str | None, run_plugin: RunPlugin, node: Node
) -> None:
    error = run_plugin(node.env("STATUS"), node.netconf(version)).error()
    assert error["code"] == 1
    assert node.standin.calls() == []


@pytest.mark.parametrize(("how", "_code"), SUBNET_ENV_PROBLEMS)
def test_status_without_a_usable_subnet_env_is_50(
    how: str, _code: int, run_plugin: RunPlugin, node: Node
) -> None:
    break_subnet_env(node.subnet_env, how)
    error = run_plugin(node.env("STATUS"), node.netconf("1.1.0")).error()
    assert error["code"] == 50
    assert str(node.subnet_env.path) in error["msg"]
    assert node.standin.calls() == []


def test_status_without_the_delegate_is_50(run_plugin: RunPlugin, node: Node) -> None:
    error = run_plugin(
        node.env("STATUS"), node.netconf("1.1.0", delegate={"type": "sriov"})
    ).error()
    assert error["code"] == 50
    assert "sriov" in error["msg"]
    assert node.standin.calls() == []


def test_status_is_50_and_not_forwarded_when_the_delegate_stops_before_1_1_0(
    run_plugin: RunPlugin, node: Node
) -> None:
    node.standin.script({"VERSION": {"supportedVersions": list(BEFORE_1_1)}})
    error = run_plugin(node.env("STATUS"), node.netconf("1.1.0")).error()
    assert error["code"] == 50
    assert "1.1.0" in error["msg"]
    [call] = node.standin.calls()
    assert (call["plugin"], call["command"]) == ("bridge", "VERSION")
    assert call["config"] == {"cniVersion": "1.1.0", "type": "bridge"}


def test_status_is_forwarded_with_the_rendering_to_a_1_1_0_delegate(
    run_plugin: RunPlugin, node: Node
) -> None:
    run_plugin(node.env("STATUS"), node.netconf("1.1.0")).silent_success()
    assert [c["command"] for c in node.standin.calls()] == ["VERSION", "STATUS"]
    status = node.standin.calls("STATUS")[0]
    added(run_plugin, node.env("ADD"), node.netconf("1.1.0"))
    assert status["config"] == node.standin.calls("ADD")[0]["config"]


def test_status_passes_the_delegates_error_through(run_plugin: RunPlugin, node: Node) -> None:
    not_ready = {"code": 51, "msg": "bridge cni0 is being recreated", "details": ""}
    node.standin.script({"STATUS": {"error": not_ready}})
    error = run_plugin(node.env("STATUS"), node.netconf("1.1.0")).error()
    assert error == {"cniVersion": "1.1.0", **not_ready}


def test_status_with_a_delegate_that_cannot_answer_version_is_not_available(
    run_plugin: RunPlugin, node: Node
) -> None:
    """Spec §2: STATUS is 0 when ADD could be served, otherwise 50 (or 51)."""
    node.standin.script({"VERSION": {"exit": 2, "stdout": "segmentation fault"}})
    error = run_plugin(node.env("STATUS"), node.netconf("1.1.0")).error()
    assert error["code"] in (50, 51)


# -- GC ---------------------------------------------------------------------------------


def gc_conf(netconf: NetconfFactory, *valid: tuple[str, str], **keys: Any) -> JsonObject:
    attachments = [{"containerID": cid, "ifname": ifname} for cid, ifname in valid]
    return netconf("1.1.0", **{VALID: attachments}, **keys)


@pytest.fixture
def populated(run_plugin: RunPlugin, node: Node) -> dict[str, bytes]:
    """dataDir with records of ours and of the Go plugin, and an interrupted write."""
    for cid, ifname in [("live0", "eth0"), ("dead0", "eth0"), ("dead0", "eth1"), ("dead1", "eth0")]:
        added(
            run_plugin,
            node.env("ADD", CNI_CONTAINERID=cid, CNI_IFNAME=ifname),
            node.netconf("1.1.0"),
        )
    write_record(node.data_dir, "golive", json.dumps(GO_RECORD).encode())
    write_record(node.data_dir, "godead", json.dumps({**GO_RECORD, "type": "ptp"}).encode())
    write_record(node.data_dir, ".tmp-0123456789abcdef", b'{"half": ')
    abandoned = time.time() - 2 * TEMP_ABANDONED_AFTER_SECONDS
    os.utime(node.data_dir / ".tmp-0123456789abcdef", (abandoned, abandoned))
    return node.records()


def test_gc_keeps_a_temporary_file_that_may_still_be_written(
    run_plugin: RunPlugin, node: Node
) -> None:
    # Another network sharing dataDir may be in the middle of an ADD.
    write_record(node.data_dir, ".tmp-fedcba9876543210", b'{"half": ')
    run_plugin(node.env("GC"), gc_conf(node.netconf)).silent_success()
    assert ".tmp-fedcba9876543210" in node.records()


def test_gc_releases_stale_records_and_keeps_valid_ones(
    populated: dict[str, bytes], run_plugin: RunPlugin, node: Node
) -> None:
    adds = len(node.standin.calls())
    valid = [("live0", "eth0"), ("golive", "eth0")]
    run_plugin(node.env("GC"), gc_conf(node.netconf, *valid)).silent_success()
    assert set(node.records()) == {"live0:eth0", "golive"}
    deletes = node.standin.calls("DEL")
    released = {(c["containerid"], c["ifname"]): c for c in deletes}
    assert set(released) == {
        ("dead0", "eth0"),
        ("dead0", "eth1"),
        ("dead1", "eth0"),
        ("godead", "eth0"),
    }
    assert len(deletes) == 4
    for (cid, ifname), call in released.items():
        name = legacy_record_name(cid) if cid == "godead" else record_name(cid, ifname)
        assert call["config"] == json.loads(populated[name])
        assert call["netns"] == ""
        assert call["env"]["CNI_CONTAINERID"] == cid
    assert released[("godead", "eth0")]["plugin"] == "ptp"
    assert len(node.standin.calls()) == adds + 4 + 2  # the DELs, then VERSION and GC


def test_gc_forwards_the_valid_attachments_to_a_1_1_0_delegate(
    run_plugin: RunPlugin, node: Node
) -> None:
    conf = gc_conf(node.netconf, ("b0", "eth0"), ("a0", "eth1"))
    run_plugin(node.env("GC"), conf).silent_success()
    assert [c["command"] for c in node.standin.calls()] == ["VERSION", "GC"]
    [call] = node.standin.calls("GC")
    added(run_plugin, node.env("ADD"), node.netconf("1.1.0"))
    rendering = node.standin.calls("ADD")[0]["config"]
    assert call["config"] == {
        **rendering,
        VALID: [{"containerID": "a0", "ifname": "eth1"}, {"containerID": "b0", "ifname": "eth0"}],
    }


def test_gc_is_not_forwarded_to_a_delegate_older_than_1_1_0(
    run_plugin: RunPlugin, node: Node
) -> None:
    node.standin.script({"VERSION": {"supportedVersions": list(BEFORE_1_1)}})
    run_plugin(node.env("GC"), gc_conf(node.netconf)).silent_success()
    assert [c["command"] for c in node.standin.calls()] == ["VERSION"]


def test_gc_continues_past_failures_and_reports_them_all(
    populated: dict[str, bytes], run_plugin: RunPlugin, node: Node
) -> None:
    # Stale records are released in name order: dead0:eth0, dead0:eth1, dead1:eth0,
    # godead (a ptp record), golive (a Go record whose container is not listed).
    first = {"code": 11, "msg": "first DEL failed", "details": ""}
    third = {"code": 5, "msg": "third DEL failed", "details": ""}
    gc_error = {"code": 5, "msg": "delegate GC failed", "details": ""}
    node.standin.script(
        {"bridge/DEL": [{"error": first}, {}, {"error": third}, {}], "GC": {"error": gc_error}}
    )
    error = run_plugin(node.env("GC"), gc_conf(node.netconf, ("live0", "eth0"))).error()
    assert error["code"] == 11
    for message in ("first DEL failed", "third DEL failed", "delegate GC failed"):
        assert message in error["msg"] + error["details"]
    assert set(node.records()) == {"live0:eth0", "dead0:eth0", "dead1:eth0"}
    assert len(node.standin.calls("DEL")) == 5
    assert len(node.standin.calls("GC")) == 1


def test_gc_releases_an_unreadable_stale_record_with_a_fresh_rendering(
    run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf("1.1.0"))
    rendering = stored(node.data_dir)
    write_record(node.data_dir, RECORD, b"\x00\x01")
    run = run_plugin(node.env("GC"), gc_conf(node.netconf))
    run.silent_success()
    [call] = node.standin.calls("DEL")
    assert call["config"] == rendering
    assert node.records() == {}
    assert "removed unreadable state record" in run.stderr


def test_gc_without_a_data_dir_only_forwards(run_plugin: RunPlugin, node: Node) -> None:
    run_plugin(node.env("GC"), gc_conf(node.netconf)).silent_success()
    assert [c["command"] for c in node.standin.calls()] == ["VERSION", "GC"]
    assert not node.data_dir.exists()


@pytest.mark.parametrize("version", [*BEFORE_1_1, None])
def test_gc_of_a_config_before_1_1_0_is_incompatible(
    version: str | None, run_plugin: RunPlugin, node: Node
) -> None:
    added(run_plugin, node.env("ADD"), node.netconf("1.0.0"))
    conf = node.netconf(version, **{VALID: []})
    assert run_plugin(node.env("GC"), conf).error()["code"] == 1
    assert node.standin.calls("DEL") == []
    assert RECORD in node.records()


def test_gc_leaves_the_records_of_another_network_sharing_the_data_dir(
    run_plugin: RunPlugin, node: Node
) -> None:
    """valid-attachments lists this network's attachments only (CNI spec, GC).

    Two flannel networks with the default dataDir share it; GC of one must
    not release the other's live attachments.
    """
    added(run_plugin, node.env("ADD", CNI_IFNAME="net1"), node.netconf("1.1.0", name="second"))
    run_plugin(node.env("GC"), gc_conf(node.netconf)).silent_success()
    assert node.standin.calls("DEL") == []
    assert record_name(CONTAINER_ID, "net1") in node.records()


# -- VERSION and the last line of defence -------------------------------------------------


@pytest.mark.parametrize("version", [*ALL_VERSIONS, None])
def test_version_answers_from_stdin_alone_and_reads_no_file(
    version: str | None, run_plugin: RunPlugin, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    node.subnet_env.remove()
    stdin = json.dumps({"cniVersion": version}).encode() if version else b""

    def no_files(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"VERSION opened a file: {args}")

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", no_files)
        patch.setattr(os, "open", no_files)
        patch.setattr(os, "listdir", no_files)
        run = run_plugin({"CNI_COMMAND": "VERSION"}, stdin)
    assert run.result() == {
        "cniVersion": version or "1.1.0",
        "supportedVersions": list(ALL_VERSIONS),
    }
    assert node.standin.calls() == []


def test_version_of_a_full_config_touches_nothing(run_plugin: RunPlugin, node: Node) -> None:
    run = run_plugin({"CNI_COMMAND": "VERSION"}, node.netconf("0.4.0"))
    assert run.result()["cniVersion"] == "0.4.0"
    assert not node.data_dir.exists()
    assert node.standin.calls() == []


def test_an_unexpected_exception_is_a_999_error_object_without_traceback(
    run_plugin: RunPlugin, node: Node
) -> None:
    def runner(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        raise RuntimeError("the runner broke")

    run = run_plugin(node.env("ADD"), node.netconf("0.3.1"), runner)
    assert run.status == 1
    error = run.error()
    assert error["code"] == 999
    assert error["cniVersion"] == "0.3.1"
    assert "RuntimeError: the runner broke" in error["msg"]
    assert "Traceback" not in run.stdout + run.stderr


def test_an_unexpected_io_error_is_a_5_error_object_without_traceback(
    run_plugin: RunPlugin, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module a command imports on use that cannot be read: an I/O failure."""
    import shell.lease

    def unreadable(path: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(shell.lease, "read_lease", unreadable)
    run = run_plugin(node.env("ADD"), node.netconf())
    error = run.error()
    assert error["code"] == 5
    assert error["msg"].startswith("I/O error in the flannel plugin: OSError")
    assert "Traceback" not in run.stdout + run.stderr
    assert node.standin.calls() == []


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS", "GC"])
def test_every_command_validates_the_environment_first(
    command: str, run_plugin: RunPlugin, node: Node
) -> None:
    error = run_plugin(node.env(command, CNI_PATH=None), gc_conf(node.netconf)).error()
    assert error["code"] == 4
    assert "CNI_PATH" in error["msg"]


def test_add_keeps_the_netns_path_beside_the_record(run_plugin: RunPlugin, node: Node) -> None:
    env = node.env("ADD")
    added(run_plugin, env, node.netconf("1.0.0"))
    assert os.getxattr(node.data_dir / RECORD, NETNS_ATTRIBUTE) == env["CNI_NETNS"].encode()


# -- regressions found by the reliability campaigns ----------------------------------------


def test_add_whose_delegate_never_started_leaves_no_record(
    run_plugin: RunPlugin, node: Node
) -> None:
    calls: list[str] = []

    def runner(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        calls.append(env["CNI_COMMAND"])
        raise OSError(8, "Exec format error")

    error = run_plugin(node.env("ADD"), node.netconf(), runner).error()
    assert error["code"] == 100
    assert calls == ["ADD"], "no rollback DEL for a delegate that never ran"
    assert node.records() == {}


def test_add_whose_delegate_pipes_fail_is_5_and_rolled_back(
    run_plugin: RunPlugin, node: Node
) -> None:
    calls: list[str] = []

    def runner(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        calls.append(env["CNI_COMMAND"])
        if env["CNI_COMMAND"] == "ADD":
            raise DelegateIOError(5, "Input/output error")
        return StandinRunner()(executable, env, stdin)

    error = run_plugin(node.env("ADD"), node.netconf(), runner).error()
    assert error["code"] == 5
    assert "bridge" in error["msg"]
    assert calls == ["ADD", "DEL"]
    assert node.records() == {}


def test_add_whose_rendering_could_not_be_read_back_is_7(run_plugin: RunPlugin, node: Node) -> None:
    huge = {"portMappings": [{"hostPort": 1, "containerPort": 1, "note": "x" * MAX_RECORD_BYTES}]}
    error = run_plugin(node.env("ADD"), node.netconf(runtimeConfig=huge)).error()
    assert error["code"] == 7
    assert node.records() == {}
    assert node.standin.calls() == []


def test_add_with_a_fifo_as_subnet_env_is_5_and_does_not_hang(
    run_executable: RunPlugin, node: Node
) -> None:
    node.subnet_env.remove()
    os.mkfifo(node.subnet_env.path)
    error = run_executable(node.env("ADD"), node.netconf()).error()
    assert error["code"] == 5
    assert "not a regular file" in error["msg"]


def test_gc_never_touches_a_file_that_only_looks_like_a_go_record(
    run_plugin: RunPlugin, node: Node
) -> None:
    node.data_dir.mkdir(parents=True, exist_ok=True)
    (node.data_dir / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    (node.data_dir / "other-net").write_text(json.dumps({**GO_RECORD, "name": "another"}))
    run_plugin(node.env("GC"), gc_conf(node.netconf)).silent_success()
    assert set(node.records()) == {"hosts", "other-net"}
    assert node.standin.calls("DEL") == []


@pytest.mark.parametrize("command", ["VERSION", "GC", "STATUS"])
def test_commands_without_an_attachment_ignore_cni_args(
    command: str, run_plugin: RunPlugin, node: Node
) -> None:
    conf = gc_conf(node.netconf) if command == "GC" else node.netconf("1.1.0")
    run = run_plugin(node.env(command, CNI_ARGS="not pairs"), conf)
    assert run.status == 0, run.stdout
