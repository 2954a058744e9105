"""Delegate faults, through the installed ``flannel`` executable (issue part 2).

Every way a delegate can fail an ADD: missing from CNI_PATH, not executable
(no execute bit, a data file with one, a script whose interpreter is
missing), exiting non-zero with and without a CNI error object, printing
garbage, printing a result of another cniVersion, printing megabytes,
hanging until it is killed. Each must give one CNI error object whose code
is the documented one and whose message names the delegate and the cause;
where the delegate ran, its DEL must have run with the same configuration
(rollback); and no record may be left in dataDir.

The delegates are the recording stand-ins (tests/standin_plugin.py), run
through a wrapper that adds the faults a JSON script cannot express
(flooding stdout, hanging, a child that keeps the pipes open).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.delegate_output import MAX_STDOUT_BYTES, STDERR_KEPT_BYTES
from tests.conftest import (
    CONTAINER_ID,
    IFNAME,
    SUBNET_ENV_V4,
    EnvFactory,
    NetconfFactory,
    PluginRun,
    Standin,
    SubnetEnv,
    flannel_executable,
    install_standin,
)

REPO = Path(__file__).resolve().parent.parent
JsonObject = dict[str, Any]

# The stand-in, plus faults steered by $FAULT on ADD. It records each call first.
FAULTY_DELEGATE = """
import os, sys, time
sys.path.insert(0, {repo!r})
from tests import standin_plugin

name = sys.argv[1]
command = os.environ.get("CNI_COMMAND", "")
fault = os.environ.get("FAULT", "") if command == "ADD" else ""
reply = standin_plugin.invoke(name, os.environ, sys.stdin.buffer.read())
if fault == "flood":
    sys.stderr.write("bridge: about to flood stdout\\n")
    sys.stderr.flush()
    block = b"x" * 65536
    while True:
        sys.stdout.buffer.write(block)
if fault == "hang":
    child = os.fork()
    if child == 0:  # holds stdout and stderr open, as a daemonised helper would
        time.sleep(120)
        os._exit(0)
    with open(os.environ["FAULT_PIDS"], "w") as file:
        file.write(f"{{os.getpid()}} {{child}}")
    sys.stderr.write("bridge: waiting for a lock that never comes\\n")
    sys.stderr.flush()
    time.sleep(120)
if fault == "stderr-flood":
    sys.stderr.buffer.write(b"EARLY-LINE\\n" + b"e" * 5_000_000 + b"\\nthe last words\\n")
sys.stdout.buffer.write(reply.stdout)
sys.stdout.flush()
sys.stderr.buffer.write(reply.stderr)
sys.stderr.flush()
if reply.signal:
    os.kill(os.getpid(), reply.signal)
sys.exit(reply.exit)
"""


@dataclass(frozen=True)
class Node:
    """One test's node: subnet.env, dataDir, CNI_PATH with faulty stand-ins."""

    root: Path
    standin: Standin
    data_dir: Path
    netconf: NetconfFactory
    env: EnvFactory

    def records(self) -> list[str]:
        return sorted(os.listdir(self.data_dir)) if self.data_dir.exists() else []

    def commands(self) -> list[tuple[str, str]]:
        return [(c["plugin"], c["command"]) for c in self.standin.calls()]


@pytest.fixture
def node(tmp_path: Path) -> Node:
    bin_dir = tmp_path / "opt" / "cni" / "bin"
    bin_dir.mkdir(parents=True)
    program = tmp_path / "faulty_delegate.py"
    program.write_text(FAULTY_DELEGATE.format(repo=str(REPO)), encoding="utf-8")
    for name in ("bridge", "macvlan"):
        wrapper = bin_dir / name
        command = shlex.join([sys.executable, "-I", "-S", str(program), name])
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
    install_standin(bin_dir, "host-local")
    subnet = SubnetEnv(tmp_path / "run" / "flannel" / "subnet.env")
    subnet.path.parent.mkdir(parents=True)
    subnet.write(SUBNET_ENV_V4)
    data_dir = tmp_path / "var" / "lib" / "cni" / "flannel"
    standin = Standin(bin_dir, tmp_path / "standin-log.jsonl", tmp_path / "standin-script.json")
    return Node(
        tmp_path, standin, data_dir, NetconfFactory(subnet.path, data_dir), EnvFactory(standin)
    )


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Processes a test leaves behind on purpose (a hung delegate's child); killed after."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start(env: dict[str, str], conf: JsonObject) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [flannel_executable()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(conf).encode())
    process.stdin.close()
    process.stdin = None  # so that communicate() only reads
    return process


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> PluginRun:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return PluginRun(
        process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )


def add(node: Node, version: str = "1.0.0", **env: str) -> PluginRun:
    return finish(start(node.env("ADD", **env), node.netconf(version)))


def assert_rolled_back(node: Node, plugin: str = "bridge") -> None:
    """The delegate's ADD ran, then its DEL with the same configuration; no record stays."""
    assert node.commands() == [(plugin, "ADD"), (plugin, "DEL")]
    added, deleted = node.standin.calls()
    assert deleted["config"] == added["config"]
    assert (deleted["containerid"], deleted["ifname"]) == (CONTAINER_ID, IFNAME)
    assert node.records() == []


def log_line(run: PluginRun) -> JsonObject:
    """The plugin's one structured log line (the last line of its stderr)."""
    line = json.loads(run.stderr.strip().splitlines()[-1])
    assert isinstance(line, dict)
    return line


# ---------------------------------------------------------------- never executed: 100


def test_missing_from_cni_path_is_100_and_nothing_runs_or_stays(node: Node) -> None:
    error = add(node, CNI_PATH=str(node.root / "empty")).error()
    assert error["code"] == 100
    assert "'bridge'" in error["msg"]
    assert "not found in CNI_PATH" in error["msg"]
    assert node.commands() == []
    assert node.records() == []


@pytest.mark.parametrize(
    ("content", "mode", "cause"),
    [
        pytest.param(b"#!/bin/sh\nexit 0\n", 0o644, "is not executable", id="no-execute-bit"),
        pytest.param(
            b"#!/nonexistent/bin/sh\n", 0o755, "interpreter '/nonexistent/bin/sh'", id="no-interp"
        ),
        pytest.param(b"touch {decoy}\n", 0o755, "neither an ELF program", id="text-no-shebang"),
        pytest.param(b"\x00\x01\x02garbage", 0o755, "neither an ELF program", id="binary-junk"),
    ],
)
def test_a_delegate_that_cannot_be_executed_is_100_and_nothing_runs_or_stays(
    node: Node, content: bytes, mode: int, cause: str
) -> None:
    decoy = node.root / "decoy-touched"
    bridge = node.standin.directory / "bridge"
    bridge.write_bytes(content.replace(b"{decoy}", str(decoy).encode()))
    bridge.chmod(mode)
    error = add(node).error()
    assert error["code"] == 100
    assert "'bridge'" in error["msg"]
    assert cause in error["msg"]
    assert not decoy.exists(), "a text file was run as a shell script"
    assert node.commands() == []
    assert node.records() == []


# ---------------------------------------------------------------- executed, failed: rolled back


def test_exit_non_zero_with_an_error_object_passes_it_on_and_rolls_back(node: Node) -> None:
    node.standin.script(
        {"ADD": {"error": {"code": 11, "msg": "no free address", "details": "pool"}, "exit": 2}}
    )
    run = add(node)
    error = run.error()
    # The spec keeps the delegate's code, msg and details; the log line names the delegate.
    assert (error["code"], error["msg"], error["details"]) == (11, "no free address", "pool")
    assert log_line(run)["delegate"] == "bridge"
    assert log_line(run)["code"] == 11
    assert_rolled_back(node)


@pytest.mark.parametrize("status", [1, 2, 127, 255])
def test_exit_non_zero_without_an_error_object_is_101_and_rolls_back(
    node: Node, status: int
) -> None:
    node.standin.script({"ADD": {"exit": status, "stdout": "", "stderr": "panic: nil map\n"}})
    error = add(node).error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert f"exited with status {status} without a CNI error object" in error["msg"]
    assert "panic: nil map" in error["details"]
    assert_rolled_back(node)


@pytest.mark.parametrize(
    ("stdout", "cause"),
    [
        ("Error: something", "is not valid JSON"),
        ("", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object, not an array"),
        ('{"cniVersion": "1.0.0", "ips": [NaN]}', "NaN is not valid JSON"),
        ('{"cniVersion": "1.0.0"', "is not valid JSON"),
    ],
)
def test_garbage_on_success_is_101_and_rolls_back(node: Node, stdout: str, cause: str) -> None:
    node.standin.script({"ADD": {"stdout": stdout, "stderr": "bridge: done\n"}})
    error = add(node).error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert cause in error["msg"]
    assert_rolled_back(node)


@pytest.mark.parametrize(
    ("config_version", "result_version"),
    [("1.0.0", "0.4.0"), ("0.3.1", "1.0.0"), ("0.4.0", "0.3.0"), ("1.1.0", "1.0.0")],
)
def test_a_result_of_another_version_is_101_naming_both_and_rolls_back(
    node: Node, config_version: str, result_version: str
) -> None:
    result = {
        "cniVersion": result_version,
        "interfaces": [{"name": "cni0"}],
        "ips": [{"address": "10.244.7.2/24"}],
    }
    node.standin.script({"ADD": {"stdout": result}})
    error = add(node, config_version).error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert f"cniVersion '{result_version}'" in error["msg"]
    assert f"cniVersion '{config_version}'" in error["msg"]
    assert error["cniVersion"] == config_version
    assert_rolled_back(node)


def test_a_delegate_flooding_stdout_is_stopped_101_and_rolled_back(node: Node) -> None:
    started = time.monotonic()
    run = add(node, FAULT="flood")
    assert time.monotonic() - started < 30
    error = run.error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert f"printed more than {MAX_STDOUT_BYTES >> 20} MiB on stdout" in error["msg"]
    assert "about to flood stdout" in error["details"]
    assert len(run.stdout) < 10_000
    assert_rolled_back(node)


def test_megabytes_of_stderr_are_cut_to_their_tail_and_the_add_succeeds(node: Node) -> None:
    run = add(node, FAULT="stderr-flood")
    assert run.result()["cniVersion"] == "1.0.0"
    assert "the last words" in run.stderr
    assert "EARLY-LINE" not in run.stderr
    assert "bytes are dropped" in run.stderr
    assert len(run.stderr) < STDERR_KEPT_BYTES + 4096
    assert node.commands() == [("bridge", "ADD")]
    assert len(node.records()) == 1


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT], ids=lambda s: s.name
)
def test_a_delegate_killed_by_a_signal_is_101_naming_it_and_rolled_back(
    node: Node, sig: signal.Signals
) -> None:
    node.standin.script({"ADD": {"signal": int(sig), "stdout": "", "stderr": "dying\n"}})
    error = add(node).error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert f"was killed by {sig.name}" in error["msg"]
    assert "dying" in error["details"]
    assert_rolled_back(node)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_hanging_delegate_killed_from_outside_is_101_at_once_and_rolled_back(
    node: Node, leftovers: list[int], sig: signal.Signals
) -> None:
    # It hangs with a child that keeps its stdout and stderr open; when it is
    # killed, the plugin must answer without waiting for the child.
    pids = node.root / "hung.pids"
    process = start(node.env("ADD", FAULT="hang", FAULT_PIDS=str(pids)), node.netconf("1.0.0"))
    try:
        deadline = time.monotonic() + 30
        while not pids.exists() or len(pids.read_text().split()) < 2:
            assert time.monotonic() < deadline, "the delegate never started"
            assert process.poll() is None, "the plugin did not wait for its delegate"
            time.sleep(0.02)
        delegate, child = (int(pid) for pid in pids.read_text().split())
        leftovers.append(child)  # alive until killed: its pid cannot be reused meanwhile
        time.sleep(0.2)
        assert process.poll() is None, "the plugin must wait for a delegate that hangs"
        os.kill(delegate, sig)
        killed = time.monotonic()
        run = finish(process, timeout=20)
    finally:
        if process.poll() is None:  # the delegate dies with it (setpriv --pdeathsig)
            process.kill()
            process.wait()
    assert time.monotonic() - killed < 10
    error = run.error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert f"was killed by {sig.name}" in error["msg"]
    assert "waiting for a lock" in error["details"]
    assert_rolled_back(node)


# ---------------------------------------------------------------- DEL keeps what it cannot release


@pytest.mark.parametrize(
    ("step", "cause"),
    [
        ({"exit": 1, "stdout": "", "stderr": "oops"}, "exited with status 1"),
        ({"signal": 9, "stdout": ""}, "was killed by SIGKILL"),
    ],
    ids=["exit-1", "killed"],
)
def test_a_failed_del_names_the_delegate_and_keeps_the_record_for_the_retry(
    node: Node, step: JsonObject, cause: str
) -> None:
    add(node).result()
    assert len(node.records()) == 1
    node.standin.script({"DEL": [step, {}]})
    conf = node.netconf("1.0.0")
    failed = finish(start(node.env("DEL"), conf)).error()
    assert failed["code"] == 101
    assert "'bridge'" in failed["msg"]
    assert cause in failed["msg"]
    assert len(node.records()) == 1
    finish(start(node.env("DEL"), conf)).silent_success()
    assert node.records() == []
    assert node.commands() == [("bridge", "ADD"), ("bridge", "DEL"), ("bridge", "DEL")]
