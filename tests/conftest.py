"""Shared fixtures: a temporary node (subnet.env, dataDir, CNI_PATH of stand-ins)
and two ways to run the plugin, in-process and as the installed executable.

Every path lives under pytest's ``tmp_path``; nothing touches /run/flannel or
/var/lib/cni, and nothing needs a network namespace.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.delegate_output import Outcome
from shell.delegate import Runner
from shell.main import run
from tests import standin_plugin

JsonObject = dict[str, Any]

SUBNET_ENV_V4 = """\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""
SUBNET_ENV_DUAL = (
    SUBNET_ENV_V4
    + "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\n"
)
# The same node after flanneld leased it another subnet.
SUBNET_ENV_MOVED = SUBNET_ENV_V4.replace("10.244.7.1/24", "10.244.9.1/24")

STANDIN_NAMES = ("bridge", "ipvlan", "macvlan", "ptp", "host-local")
STANDIN_SOURCE = Path(__file__).with_name("standin_plugin.py")

CONTAINER_ID = "c0ffee0123456789"
IFNAME = "eth0"
NETNS = "/var/run/netns/cni-test-0000"
PREV_RESULT: JsonObject = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "eth0", "sandbox": NETNS}],
    "ips": [{"address": "10.244.7.2/24", "gateway": "10.244.7.1", "interface": 0}],
}


# -- the node's files ---------------------------------------------------------


@dataclass(frozen=True)
class SubnetEnv:
    """The node's subnet.env; starts as :data:`SUBNET_ENV_V4`."""

    path: Path

    def write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")

    def remove(self) -> None:
        self.path.unlink()


@pytest.fixture
def subnet_env(tmp_path: Path) -> SubnetEnv:
    env = SubnetEnv(tmp_path / "run" / "flannel" / "subnet.env")
    env.path.parent.mkdir(parents=True)
    env.write(SUBNET_ENV_V4)
    return env


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """dataDir; not created, the plugin creates it on its first ADD."""
    return tmp_path / "var" / "lib" / "cni" / "flannel"


def records(data_dir: Path) -> dict[str, bytes]:
    """Every file in dataDir by name (empty when dataDir does not exist)."""
    if not data_dir.exists():
        return {}
    return {entry.name: entry.read_bytes() for entry in data_dir.iterdir() if entry.is_file()}


def all_files(root: Path) -> set[str]:
    """Every path under ``root``, for "nothing was created" assertions."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}


# -- stand-in delegates ---------------------------------------------------------


@dataclass(frozen=True)
class Standin:
    """The stand-in delegates of one test: CNI_PATH, their script and their log."""

    directory: Path
    log: Path
    script_file: Path

    def script(self, steps: Mapping[str, Any]) -> None:
        """Steer the stand-ins (format in :mod:`standin_plugin`)."""
        self.script_file.write_text(json.dumps(steps), encoding="utf-8")

    def calls(self, command: str | None = None) -> list[JsonObject]:
        """The recorded invocations, oldest first, optionally of one command."""
        entries = standin_plugin.read_log(str(self.log))
        return [e for e in entries if command is None or e["command"] == command]

    def env(self) -> dict[str, str]:
        return {
            standin_plugin.LOG_VAR: str(self.log),
            standin_plugin.SCRIPT_VAR: str(self.script_file),
        }


def install_standin(directory: Path, name: str) -> Path:
    """A wrapper named ``name`` in ``directory`` that runs the stand-in as ``name``."""
    wrapper = directory / name
    command = shlex.join([sys.executable, "-I", "-S", str(STANDIN_SOURCE), name])
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture
def standin(tmp_path: Path) -> Standin:
    directory = tmp_path / "opt" / "cni" / "bin"
    directory.mkdir(parents=True)
    for name in STANDIN_NAMES:
        install_standin(directory, name)
    return Standin(directory, tmp_path / "standin-log.jsonl", tmp_path / "standin-script.json")


class StandinRunner:
    """A :data:`shell.delegate.Runner` that answers as the stand-in would, in-process."""

    def __call__(self, executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        assert os.access(executable, os.X_OK), executable
        reply = standin_plugin.invoke(os.path.basename(executable), env, stdin)
        return Outcome(-reply.signal if reply.signal else reply.exit, reply.stdout, reply.stderr)


# -- inputs -------------------------------------------------------------------------


class NetconfFactory:
    """Network configurations pointing at the test's subnet.env and dataDir."""

    def __init__(self, subnet_file: Path, data_dir: Path) -> None:
        self.subnet_file = subnet_file
        self.data_dir = data_dir

    def __call__(self, version: str | None = "1.0.0", **keys: Any) -> JsonObject:
        """``version=None`` leaves cniVersion out; ``keys`` are added or replace."""
        conf: JsonObject = {
            "name": "cbr0",
            "type": "flannel",
            "subnetFile": str(self.subnet_file),
            "dataDir": str(self.data_dir),
            "delegate": {"hairpinMode": True, "isDefaultGateway": True},
        }
        if version is not None:
            conf["cniVersion"] = version
        conf.update(keys)
        return conf


@pytest.fixture
def netconf(subnet_env: SubnetEnv, data_dir: Path) -> NetconfFactory:
    return NetconfFactory(subnet_env.path, data_dir)


class EnvFactory:
    """CNI environments for the test's CNI_PATH; a ``None`` value drops a variable."""

    def __init__(self, standin: Standin) -> None:
        self.standin = standin

    def __call__(self, command: str, **variables: str | None) -> dict[str, str]:
        env: dict[str, str | None] = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": CONTAINER_ID,
            "CNI_NETNS": NETNS,
            "CNI_IFNAME": IFNAME,
            "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
            "CNI_PATH": f"{self.standin.directory}:/nonexistent/cni/bin",
            **self.standin.env(),
        }
        if command in ("GC", "STATUS"):  # runtimes send no attachment for these
            for name in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"):
                env[name] = None
        env.update(variables)
        return {k: v for k, v in env.items() if v is not None}


@pytest.fixture
def cni_env(standin: Standin) -> EnvFactory:
    return EnvFactory(standin)


@dataclass(frozen=True)
class Node:
    """One test's node: its subnet.env, dataDir, stand-ins, and input builders."""

    subnet_env: SubnetEnv
    data_dir: Path
    standin: Standin
    netconf: NetconfFactory
    env: EnvFactory

    def records(self) -> dict[str, bytes]:
        return records(self.data_dir)


@pytest.fixture
def node(subnet_env: SubnetEnv, data_dir: Path, standin: Standin, netconf: NetconfFactory) -> Node:
    return Node(subnet_env, data_dir, standin, netconf, EnvFactory(standin))


# -- running the plugin ---------------------------------------------------------------


@dataclass(frozen=True)
class PluginRun:
    """How one invocation of the plugin ended."""

    status: int
    stdout: str
    stderr: str

    def result(self) -> JsonObject:
        """The one JSON result of a successful invocation."""
        assert self.status == 0, (self.stdout, self.stderr)
        return self._one_object()

    def error(self) -> JsonObject:
        """The one CNI error object of a failed invocation."""
        assert self.status != 0, (self.stdout, self.stderr)
        error = self._one_object()
        assert set(error) == {"cniVersion", "code", "msg", "details"}, error
        assert isinstance(error["code"], int)
        assert isinstance(error["msg"], str)
        assert isinstance(error["details"], str)
        return error

    def silent_success(self) -> None:
        """A successful DEL, CHECK, STATUS or GC: exit 0 and nothing on stdout."""
        assert (self.status, self.stdout) == (0, ""), (self.stdout, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr

    def _one_object(self) -> JsonObject:
        assert "Traceback" not in self.stdout + self.stderr, self.stderr
        decoder = json.JSONDecoder()
        text = self.stdout.strip()
        value, end = decoder.raw_decode(text)
        assert end == len(text), f"more than one JSON value on stdout: {self.stdout!r}"
        assert isinstance(value, dict), value
        return value


def _stdin_bytes(stdin: JsonObject | bytes) -> bytes:
    return stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode("utf-8")


RunPlugin = Callable[..., PluginRun]


@pytest.fixture
def run_plugin() -> RunPlugin:
    """``run_plugin(env, stdin, runner=StandinRunner())`` through :func:`shell.main.run`."""

    def call(
        env: Mapping[str, str], stdin: JsonObject | bytes, runner: Runner | None = None
    ) -> PluginRun:
        out, err = io.StringIO(), io.StringIO()
        status = run(env, _stdin_bytes(stdin), out, err, runner or StandinRunner())
        return PluginRun(status, out.getvalue(), err.getvalue())

    return call


def flannel_executable() -> str:
    """The installed console script; a missing one fails the test, never skips it."""
    beside = Path(sys.executable).parent / "flannel"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("flannel")
    if found is None:
        pytest.fail("the flannel executable is not installed (pip install -e .)")
    return found


@pytest.fixture
def run_executable() -> RunPlugin:
    """``run_executable(env, stdin)``: the installed ``flannel`` as a runtime runs it."""
    executable = flannel_executable()

    def call(env: Mapping[str, str], stdin: JsonObject | bytes) -> PluginRun:
        done = subprocess.run(
            [executable],
            input=_stdin_bytes(stdin),
            env=dict(env),
            capture_output=True,
            check=False,
            timeout=30,
        )
        return PluginRun(
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    return call


# -- the operator's tool, flannel-cni -----------------------------------------------------


@dataclass(frozen=True)
class ToolRun:
    """How one run of ``flannel-cni`` ended."""

    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def lines(self) -> list[str]:
        return self.stdout.splitlines()


RunTool = Callable[..., ToolRun]


@pytest.fixture
def run_tool() -> RunTool:
    """``run_tool(*args, env=None)``: the installed ``flannel-cni``; never a traceback.

    The environment is the test's own without CNI_PATH, plus ``env``; a
    missing executable fails the test, never skips it.
    """
    beside = Path(sys.executable).parent / "flannel-cni"
    executable = str(beside) if os.access(beside, os.X_OK) else shutil.which("flannel-cni")
    if executable is None:
        pytest.fail("the flannel-cni executable is not installed (pip install -e .)")

    def call(*args: str, env: Mapping[str, str] | None = None) -> ToolRun:
        base = {k: v for k, v in os.environ.items() if k != "CNI_PATH"}
        done = subprocess.run(
            [executable, *args],
            env={**base, **(env or {})},
            capture_output=True,
            check=False,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        run = ToolRun(
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )
        assert "Traceback" not in run.stdout + run.stderr, run.stderr
        return run

    return call
