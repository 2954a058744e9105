"""``flannel-cni render``: the delegate config ADD would produce, from real files.

Each rendering is compared with what the real ``flannel`` ADD stored and sent
to its (stand-in) delegate for the same configuration, and each refusal with
the error ADD gives: render must say what ADD would do, not what we think.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.records import record_name
from tests.conftest import (
    CONTAINER_ID,
    IFNAME,
    SUBNET_ENV_DUAL,
    SUBNET_ENV_MOVED,
    JsonObject,
    Node,
    RunPlugin,
    RunTool,
    ToolRun,
)

RECORD = record_name(CONTAINER_ID, IFNAME)


def conflist(node: Node, version: str = "0.3.1", **entry: Any) -> JsonObject:
    """kube-flannel's list, its flannel entry pointed at the test's node."""
    flannel: JsonObject = {
        "type": "flannel",
        "subnetFile": str(node.subnet_env.path),
        "dataDir": str(node.data_dir),
        "delegate": {"hairpinMode": True, "isDefaultGateway": True},
        **entry,
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    return {"name": "cbr0", "cniVersion": version, "plugins": [portmap, flannel]}


def request_of(listed: JsonObject) -> JsonObject:
    """What libcni sends the flannel entry, written out by hand."""
    entry = next(p for p in listed["plugins"] if p["type"] == "flannel")
    return {**entry, "name": listed["name"], "cniVersion": listed["cniVersion"]}


def write(path: Path, obj: object) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return str(path)


def rendered(run: ToolRun) -> JsonObject:
    assert run.status == 0, (run.stdout, run.stderr)
    value = run.json()
    assert run.stdout == json.dumps(value, indent=2, sort_keys=True) + "\n"
    assert isinstance(value, dict)
    return value


def cni_error(run: ToolRun) -> JsonObject:
    assert run.status == 1, (run.stdout, run.stderr)
    assert len(run.lines()) == 1, run.stdout
    error = run.json()
    assert set(error) == {"cniVersion", "code", "msg", "details"}
    assert isinstance(error, dict)
    return error


def test_a_conflist_renders_what_add_stores_and_sends(
    tmp_path: Path, node: Node, run_tool: RunTool, run_executable: RunPlugin
) -> None:
    listed = conflist(node)
    path = write(tmp_path / "net.d" / "10-flannel.conflist", listed)
    shown = rendered(run_tool("render", path))
    assert node.standin.calls() == []  # render executes nothing
    assert not node.data_dir.exists()  # and stores nothing

    run_executable(node.env("ADD"), request_of(listed)).result()
    assert json.loads(node.records()[RECORD]) == shown
    assert node.standin.calls("ADD")[0]["config"] == shown
    assert shown["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24"}]]
    assert (shown["name"], shown["cniVersion"], shown["hairpinMode"]) == ("cbr0", "0.3.1", True)


def test_a_single_conf_renders_what_add_stores(
    tmp_path: Path, node: Node, run_tool: RunTool, run_executable: RunPlugin
) -> None:
    node.subnet_env.write(SUBNET_ENV_DUAL)
    conf = node.netconf("1.0.0", delegate={"type": "ipvlan", "master": "eth0"})
    path = write(tmp_path / "net.d" / "10-flannel.conf", conf)
    shown = rendered(run_tool("render", path))
    run_executable(node.env("ADD"), conf).result()
    assert json.loads(node.records()[RECORD]) == shown
    assert shown["type"] == "ipvlan"
    assert "isGateway" not in shown
    assert len(shown["ipam"]["ranges"]) == 2


def test_subnet_file_option_overrides_the_entry_s(
    tmp_path: Path, node: Node, run_tool: RunTool
) -> None:
    path = write(tmp_path / "net.d" / "10-flannel.conflist", conflist(node))
    moved = tmp_path / "moved.env"
    moved.write_text(SUBNET_ENV_MOVED, encoding="utf-8")
    shown = rendered(run_tool("render", path, "--subnet-file", str(moved)))
    assert shown["ipam"]["ranges"] == [[{"subnet": "10.244.9.0/24"}]]
    assert rendered(run_tool("render", path))["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24"}]]


@pytest.mark.parametrize(
    "change",
    [
        {"delegate": {"name": "mine"}},  # error 7: the plugin sets the name
        {"ipam": {"routes": [{"dst": "nowhere"}]}},  # error 7: not a CIDR
        {"dataDir": "relative/path"},  # error 7: not absolute
    ],
)
def test_an_invalid_entry_gives_the_error_add_gives(
    tmp_path: Path, node: Node, run_tool: RunTool, run_executable: RunPlugin, change: JsonObject
) -> None:
    listed = conflist(node, "1.0.0", **change)
    path = write(tmp_path / "net.d" / "10-flannel.conflist", listed)
    error = cni_error(run_tool("render", path))
    assert error == run_executable(node.env("ADD"), request_of(listed)).error()
    assert error["code"] == 7
    assert error["cniVersion"] == "1.0.0"


def test_a_missing_subnet_env_gives_add_s_try_again_later(
    tmp_path: Path, node: Node, run_tool: RunTool, run_executable: RunPlugin
) -> None:
    node.subnet_env.remove()
    listed = conflist(node)
    path = write(tmp_path / "net.d" / "10-flannel.conflist", listed)
    error = cni_error(run_tool("render", path))
    assert error["code"] == 11
    assert error == run_executable(node.env("ADD"), request_of(listed)).error()


def test_an_incomplete_subnet_file_option_is_named(
    tmp_path: Path, node: Node, run_tool: RunTool
) -> None:
    path = write(tmp_path / "net.d" / "10-flannel.conflist", conflist(node))
    partial = tmp_path / "partial.env"
    partial.write_text("FLANNEL_NETWORK=10.244.0.0/16\n", encoding="utf-8")
    error = cni_error(run_tool("render", path, "--subnet-file", str(partial)))
    assert error["code"] == 11
    assert str(partial) in error["msg"]
    assert "FLANNEL_MTU" in error["msg"]


def test_a_list_without_flannel_is_error_7_saying_so(tmp_path: Path, run_tool: RunTool) -> None:
    listed = {"name": "other", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}
    path = write(tmp_path / "net.d" / "20-other.conflist", listed)
    error = cni_error(run_tool("render", path))
    assert error["code"] == 7
    assert "no plugin of type 'flannel'" in error["msg"]
    assert path in error["msg"]


def test_an_unsupported_version_is_error_1(tmp_path: Path, node: Node, run_tool: RunTool) -> None:
    path = write(tmp_path / "net.d" / "10-flannel.conflist", conflist(node, "9.9.9"))
    error = cni_error(run_tool("render", path))
    assert error["code"] == 1
    assert error["cniVersion"] == "1.1.0"
    assert "1.0.0" in error["details"]


@pytest.mark.parametrize(
    ("content", "code"),
    [(None, 5), (b"{ not json", 6), (b"\xff\xfe", 6), ("directory", 5)],
)
def test_unreadable_conf_files_are_cni_errors(
    tmp_path: Path, run_tool: RunTool, content: bytes | str | None, code: int
) -> None:
    path = tmp_path / "net.d" / "10-flannel.conflist"
    path.parent.mkdir()
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    error = cni_error(run_tool("render", str(path)))
    assert error["code"] == code
    assert str(path) in error["msg"]


@pytest.mark.parametrize("args", [["render"], ["render", "a", "b"], ["render", "--bogus", "x"]])
def test_usage_errors_exit_2(run_tool: RunTool, args: list[str]) -> None:
    done = run_tool(*args)
    assert done.status == 2
    assert done.stdout == ""
    assert done.stderr.startswith("usage: flannel-cni")
    assert "error:" in done.stderr


def test_help_names_every_subcommand(run_tool: RunTool) -> None:
    done = run_tool("--help")
    assert done.status == 0
    for command in ("render", "doctor", "records"):
        assert command in done.stdout
    assert run_tool().status == 2  # a subcommand is required


def test_the_plugin_imports_neither_the_tools_nor_argparse() -> None:
    probe = (
        "import sys, shell.main\n"
        "bad = sorted(m for m in sys.modules if m == 'argparse' or m.startswith('shell.tools'))\n"
        "print(bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.strip() == "[]"
