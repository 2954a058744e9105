"""One structured line per invocation, on stderr and in ``logFile``; logging never
changes the CNI answer or the exit status."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Node, PluginRun, RunPlugin, flannel_executable


def log_lines(text: str) -> list[dict[str, Any]]:
    """The plugin's structured lines among whatever else stderr holds."""
    found = []
    for line in text.splitlines():
        if line.startswith('{"time"'):
            found.append(json.loads(line))
    return found


def test_add_leaves_one_line_on_stderr(run_plugin: RunPlugin, node: Node) -> None:
    run = run_plugin(node.env("ADD"), node.netconf("1.0.0"))
    run.result()
    [line] = log_lines(run.stderr)
    assert line["command"] == "ADD"
    assert line["containerID"] == node.env("ADD")["CNI_CONTAINERID"]
    assert line["ifname"] == "eth0"
    assert line["delegate"] == "bridge"
    assert (line["outcome"], line["code"]) == ("success", None)
    assert line["durationMs"] >= 0
    assert line["time"].endswith("Z")


def test_a_failure_is_logged_with_its_code(run_plugin: RunPlugin, node: Node) -> None:
    node.subnet_env.remove()
    run = run_plugin(node.env("ADD"), node.netconf("1.0.0", delegate={"type": "ipvlan"}))
    error = run.error()
    [line] = log_lines(run.stderr)
    assert (line["outcome"], line["code"], line["delegate"]) == ("error", error["code"], "ipvlan")
    assert line["msg"] == error["msg"]


def test_an_invalid_environment_is_logged_too(run_plugin: RunPlugin, node: Node) -> None:
    run = run_plugin(node.env("ADD", CNI_IFNAME=None), node.netconf("1.0.0"))
    assert log_lines(run.stderr)[0]["code"] == run.error()["code"] == 4


def test_log_file_gets_the_same_line_and_is_private(
    run_plugin: RunPlugin, node: Node, tmp_path: Path
) -> None:
    log = tmp_path / "log" / "flannel.log"
    log.parent.mkdir()
    conf = node.netconf("1.0.0", logFile=str(log))
    first = run_plugin(node.env("ADD"), conf)
    second = run_plugin(node.env("DEL"), conf)
    assert log_lines(log.read_text()) == log_lines(first.stderr) + log_lines(second.stderr)
    assert [line["command"] for line in log_lines(log.read_text())] == ["ADD", "DEL"]
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_an_invalid_config_is_logged_to_its_log_file(
    run_plugin: RunPlugin, node: Node, tmp_path: Path
) -> None:
    log = tmp_path / "flannel.log"
    run = run_plugin(node.env("ADD"), node.netconf("1.0.0", name="../x", logFile=str(log)))
    assert run.error()["code"] == 7
    assert log_lines(log.read_text())[0]["code"] == 7


def broken_log_files(tmp_path: Path) -> dict[str, str]:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    fifo = tmp_path / "fifo-without-reader"
    os.mkfifo(fifo)
    target = tmp_path / "elsewhere.log"
    link = tmp_path / "link.log"
    link.symlink_to(target)
    return {
        "directory": str(directory),
        "missing parent": str(tmp_path / "no" / "such" / "dir" / "f.log"),
        "fifo": str(fifo),
        "symlink": str(link),
        "relative": "flannel.log",
        "not a string": "",
    }


@pytest.mark.parametrize(
    "case", ["directory", "missing parent", "fifo", "symlink", "relative", "not a string"]
)
@pytest.mark.parametrize("command", ["ADD", "DEL"])
def test_a_broken_log_file_changes_neither_answer_nor_status(
    case: str, command: str, run_plugin: RunPlugin, node: Node, tmp_path: Path
) -> None:
    value: Any = broken_log_files(tmp_path)[case] or ["not", "a", "string"]
    plain = run_plugin(node.env(command), node.netconf("1.0.0"))
    logged = run_plugin(node.env(command), node.netconf("1.0.0", logFile=value))
    assert (logged.status, logged.stdout) == (plain.status, plain.stdout)
    assert len(log_lines(logged.stderr)) == 1
    assert not (tmp_path / "elsewhere.log").exists(), "a symlinked logFile was followed"


def test_concurrent_writers_never_interleave_lines(node: Node, tmp_path: Path) -> None:
    log = tmp_path / "shared.log"
    conf = json.dumps(node.netconf("1.0.0", logFile=str(log))).encode()
    executable = flannel_executable()

    def add(index: int) -> PluginRun:
        done = subprocess.run(
            [executable],
            input=conf,
            env=node.env("ADD", CNI_CONTAINERID=f"c{index}"),
            capture_output=True,
            check=False,
            timeout=60,
        )
        return PluginRun(done.returncode, done.stdout.decode(), done.stderr.decode())

    with ThreadPoolExecutor(max_workers=16) as pool:
        runs = list(pool.map(add, range(48)))
    assert all(run.status == 0 for run in runs), [r.stdout for r in runs if r.status]
    lines = log.read_text().splitlines()
    assert len(lines) == 48
    assert sorted(json.loads(line)["containerID"] for line in lines) == sorted(
        f"c{i}" for i in range(48)
    )
