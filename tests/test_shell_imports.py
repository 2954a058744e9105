"""Each command imports only what it uses (docs/performance.md): every import costs
every plugin start, so what a command path imports is part of its behaviour.

Each case runs one invocation in a fresh interpreter, the way the executable does
(``shell.entry`` first, then ``shell.main.run``), and lists the modules it loaded
beyond the floor's (``returns.result`` and ``json``). The interpreter runs without
``site`` and finds the project and ``returns`` by path, as an installed plugin
would: the development install's import hook loads modules of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import returns

from core.records import record_name
from tests.conftest import CONTAINER_ID, IFNAME, Node, RunPlugin

ROOT = Path(__file__).resolve().parent.parent
SEARCH_PATH = [str(ROOT), str(Path(returns.__file__).resolve().parent.parent)]
PROBE = """\
import io, json, os, sys
import shell.entry
from shell.main import run
status = run(os.environ, sys.stdin.buffer.read(), io.StringIO(), io.StringIO())
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""
# Never on a command path: test tooling, CLI and logging frameworks, and the
# standard modules the plugin replaced with cheaper code of its own.
NEVER = {
    "hypothesis",
    "pytest",
    "argparse",
    "logging",
    "subprocess",
    "threading",
    "dataclasses",
    "copy",
    "signal",
    "ctypes",
    "shell.tools",
}
COMMAND_ONLY = {"core.render", "core.subnet_env", "shell.lease", "ipaddress"}
CHECK_ONLY = {"core.drift", "core.check_routes"}


def _loaded(code: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> dict[str, object]:
    code = f"import sys; sys.path[:0] = {SEARCH_PATH!r}\n{code}"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        input=stdin,
        env=env,
        capture_output=True,
        check=True,
    )
    value = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert isinstance(value, dict)
    return value


@pytest.fixture(scope="module")
def floor() -> set[str]:
    code = "import json, sys, returns.result; print(json.dumps({'modules': sorted(sys.modules)}))"
    modules = _loaded(code)["modules"]
    assert isinstance(modules, list)
    return set(modules)


def _beyond_floor(floor: set[str], env: dict[str, str], stdin: bytes, status: int) -> set[str]:
    value = _loaded(PROBE, {**env, "PATH": "/usr/bin:/bin"}, stdin)
    assert value["status"] == status, value["status"]
    modules = value["modules"]
    assert isinstance(modules, list)
    return set(modules) - floor


def _assert_never(extra: set[str]) -> None:
    found = {m for m in extra if any(m == n or m.startswith(f"{n}.") for n in NEVER)}
    assert not found, found
    beyond_result = {m for m in extra if m.split(".")[0] == "returns"}
    assert not beyond_result, f"returns modules beyond returns.result: {beyond_result}"


def test_version_imports_only_the_environment_rules_and_the_log_line(
    floor: set[str], node: Node
) -> None:
    extra = _beyond_floor(floor, node.env("VERSION"), b"", 0)
    _assert_never(extra)
    assert {"shell.commands", "core.netconf", "shell.spawn", "select"}.isdisjoint(extra)
    assert COMMAND_ONLY.isdisjoint(extra)
    assert {"shell.main", "core.environment", "core.logline"} <= extra


def test_del_of_a_readable_record_renders_nothing(floor: set[str], node: Node) -> None:
    node.data_dir.mkdir(parents=True)
    record = {"cniVersion": "1.0.0", "name": "cbr0", "type": "bridge"}
    (node.data_dir / record_name(CONTAINER_ID, IFNAME)).write_text(json.dumps(record))
    stdin = json.dumps(node.netconf()).encode()
    extra = _beyond_floor(floor, node.env("DEL"), stdin, 0)
    _assert_never(extra)
    assert COMMAND_ONLY.isdisjoint(extra), COMMAND_ONLY & extra
    assert CHECK_ONLY.isdisjoint(extra)
    assert {"shell.commands", "shell.spawn", "shell.store", "core.records"} <= extra
    assert not (node.data_dir / record_name(CONTAINER_ID, IFNAME)).exists()  # it did run


def test_add_renders_but_checks_no_drift(floor: set[str], node: Node) -> None:
    stdin = json.dumps(node.netconf()).encode()
    extra = _beyond_floor(floor, node.env("ADD"), stdin, 0)
    _assert_never(extra)
    assert extra >= COMMAND_ONLY
    assert CHECK_ONLY.isdisjoint(extra)


def test_check_adds_the_drift_check_and_its_route_rules(
    floor: set[str], node: Node, run_plugin: RunPlugin
) -> None:
    prev = run_plugin(node.env("ADD"), node.netconf()).result()
    check = json.dumps(node.netconf(prevResult=prev)).encode()
    extra = _beyond_floor(floor, node.env("CHECK"), check, 0)
    _assert_never(extra)
    assert extra >= CHECK_ONLY | {"ipaddress", "core.subnet_env"}
