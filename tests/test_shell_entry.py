"""The executable's entry point: the cyclic collector off, and an error object when
the plugin's modules cannot be loaded.

The collector may stay off only while no command builds reference cycles: a
cycle would then live until the process exits. These tests run every command,
successful and failing, and ask the collector what it would have found.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.conftest import SUBNET_ENV_V4, Node, RunPlugin

Scenario = Callable[[RunPlugin, Node, int], None]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _add(run_plugin: RunPlugin, node: Node, index: int) -> None:
    run_plugin(node.env("ADD", CNI_CONTAINERID=f"c{index}"), node.netconf()).result()


def _add_then_del(run_plugin: RunPlugin, node: Node, index: int) -> None:
    env = node.env("ADD", CNI_CONTAINERID=f"c{index}")
    run_plugin(env, node.netconf()).result()
    run_plugin({**env, "CNI_COMMAND": "DEL"}, node.netconf()).silent_success()


def _add_then_check(run_plugin: RunPlugin, node: Node, index: int) -> None:
    env = node.env("ADD", CNI_CONTAINERID=f"c{index}")
    prev = run_plugin(env, node.netconf()).result()
    run_plugin({**env, "CNI_COMMAND": "CHECK"}, node.netconf(prevResult=prev)).silent_success()


def _failed_add_rolled_back(run_plugin: RunPlugin, node: Node, index: int) -> None:
    node.standin.script({"ADD": {"error": {"code": 42, "msg": "no", "details": ""}}})
    error = run_plugin(node.env("ADD", CNI_CONTAINERID=f"c{index}"), node.netconf()).error()
    assert error["code"] == 42


def _status(run_plugin: RunPlugin, node: Node, index: int) -> None:
    run_plugin(node.env("STATUS"), node.netconf("1.1.0")).silent_success()
    node.standin.script({"VERSION": {"stdout": {"cniVersion": "1.0.0", "supportedVersions": []}}})
    assert run_plugin(node.env("STATUS"), node.netconf("1.1.0")).error()["code"] == 50
    node.standin.script({})


def _gc_of_stale_records(run_plugin: RunPlugin, node: Node, index: int) -> None:
    _add(run_plugin, node, index)
    conf = node.netconf("1.1.0", **{"cni.dev/valid-attachments": []})
    run_plugin(node.env("GC"), conf)
    assert node.records() == {}


def _bad_input(run_plugin: RunPlugin, node: Node, index: int) -> None:
    assert run_plugin(node.env("ADD"), b"{not json").error()["code"] == 6
    assert run_plugin(node.env("ADD", CNI_IFNAME=None), node.netconf()).error()["code"] == 4
    node.subnet_env.write("FLANNEL_NETWORK=10.244.0.0/16\n")
    assert run_plugin(node.env("ADD"), node.netconf()).error()["code"] == 11
    node.subnet_env.remove()
    assert run_plugin(node.env("ADD"), node.netconf()).error()["code"] == 11
    node.subnet_env.write(SUBNET_ENV_V4)


SCENARIOS: dict[str, Scenario] = {
    "ADD": _add,
    "ADD then DEL": _add_then_del,
    "ADD then CHECK": _add_then_check,
    "failed ADD rolled back": _failed_add_rolled_back,
    "STATUS": _status,
    "GC of stale records": _gc_of_stale_records,
    "invalid input and a missing subnet.env": _bad_input,
}


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_no_command_leaves_cyclic_garbage(
    run_plugin: RunPlugin, node: Node, scenario: Scenario
) -> None:
    scenario(run_plugin, node, 0)  # first run: imports, caches
    gc.collect()
    for index in range(1, 21):
        scenario(run_plugin, node, index)
    assert gc.collect() == 0


@pytest.mark.usefixtures("collector_off")
def test_the_check_above_sees_a_cycle() -> None:
    """The oracle works: one cycle made and dropped is found."""
    node: dict[str, object] = {}
    node["self"] = node
    del node
    assert gc.collect() >= 1


def test_the_entry_point_turns_the_collector_off_before_importing_the_plugin() -> None:
    probe = (
        "import sys, gc\n"
        "import shell.entry\n"
        "assert 'shell.main' in sys.modules\n"
        "print(gc.isenabled())\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_entry_point_is_the_console_script() -> None:
    (script,) = (e for e in entry_points(group="console_scripts") if e.name == "flannel")
    assert script.value == "shell.entry:main"


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        ('raise OSError(5, "Input/output error")', 5),
        ('raise ImportError("a partial install")', 999),
        ('raise SyntaxError("a damaged \\\\"module\\\\"\\n")', 999),
    ],
)
def test_a_module_that_cannot_load_is_answered_with_an_error_object(
    tmp_path: Path, failure: str, code: int
) -> None:
    broken = tmp_path / "returns"
    broken.mkdir()
    (broken / "__init__.py").write_text(failure + "\n")
    probe = f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(ROOT)!r}]; import shell.entry"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe],
        input=b"",
        env={"CNI_COMMAND": "ADD"},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 1
    assert b"Traceback" not in done.stdout + done.stderr
    error = json.loads(done.stdout)
    assert error["code"] == code
    assert set(error) == {"cniVersion", "code", "msg", "details"}
    assert "cannot load its modules" in error["msg"]


def test_the_entry_points_own_constants_match_the_cores() -> None:
    """shell.entry spells them out, as the core may be what cannot load."""
    from core.errors import Code
    from core.versions import LATEST

    enabled = gc.isenabled()
    try:
        from shell import entry  # turns the collector off, for the executable's process
    finally:
        if enabled:
            gc.enable()
    assert (entry._LATEST, entry._IO_FAILURE, entry._INTERNAL) == (
        LATEST,
        Code.IO_FAILURE,
        Code.INTERNAL,
    )
