"""Finding and executing delegates (shell/delegate.py), and what ADD makes of their faults."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from returns.result import Failure, Success

from core.delegate_output import Outcome
from core.records import record_name
from shell.delegate import Delegates, find_plugin
from tests.conftest import CONTAINER_ID, IFNAME, Node, RunPlugin, StandinRunner

RECORD = record_name(CONTAINER_ID, IFNAME)


def write(path: Path, content: bytes, mode: int = 0o755) -> str:
    path.write_bytes(content)
    path.chmod(mode)
    return str(path)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    return first, second


# ---------------------------------------------------------------- find_plugin


def test_an_elf_program_is_found(dirs: tuple[Path, Path]) -> None:
    exe = write(dirs[0] / "bridge", Path("/bin/true").read_bytes())
    assert find_plugin("bridge", (str(dirs[0]),)) == Success(exe)


def test_a_script_whose_interpreter_exists_is_found(dirs: tuple[Path, Path]) -> None:
    exe = write(dirs[0] / "bridge", b"#!/bin/sh -e\nexit 0\n")
    assert find_plugin("bridge", (str(dirs[0]),)) == Success(exe)


@pytest.mark.parametrize(
    ("content", "mode", "why"),
    [
        pytest.param(b"#!/bin/sh\n", 0o644, "is not executable", id="no-execute-bit"),
        pytest.param(
            b"#!/nonexistent/sh\n", 0o755, "'/nonexistent/sh', which is not", id="no-interpreter"
        ),
        pytest.param(b"#!\n", 0o755, "interpreter ''", id="empty-shebang"),
        pytest.param(b"#!/etc/passwd\n", 0o755, "'/etc/passwd'", id="interpreter-not-exe"),
        pytest.param(b"rm -rf /decoy\n", 0o755, "neither an ELF", id="text-without-shebang"),
        pytest.param(b"\x00\x01garbage", 0o755, "neither an ELF", id="binary-garbage"),
        pytest.param(b"", 0o755, "neither an ELF", id="empty-file"),
    ],
)
def test_a_file_the_kernel_would_not_execute_is_passed_over(
    dirs: tuple[Path, Path], content: bytes, mode: int, why: str
) -> None:
    # execvp (in setpriv) would run a text file without #! with /bin/sh: never let it.
    bad = write(dirs[0] / "bridge", content, mode)
    good = write(dirs[1] / "bridge", b"#!/bin/sh\n")
    assert find_plugin("bridge", (str(dirs[0]), str(dirs[1]))) == Success(good)
    alone = find_plugin("bridge", (str(dirs[0]),))
    assert isinstance(alone, Failure)
    error = alone.failure()
    assert error.code == 100
    assert "'bridge'" in error.msg
    assert bad in error.msg
    assert why in error.msg


def test_a_directory_named_like_the_delegate_is_not_it(dirs: tuple[Path, Path]) -> None:
    (dirs[0] / "bridge").mkdir()
    found = find_plugin("bridge", (str(dirs[0]),))
    assert isinstance(found, Failure)
    assert found.failure().code == 100
    assert "not found in CNI_PATH" in found.failure().msg


# ---------------------------------------------------------------- Delegates.call


class Canned:
    """A runner that answers every execution with one outcome and records them."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str, str]] = []

    def __call__(self, executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        self.calls.append((os.path.basename(executable), env["CNI_COMMAND"]))
        return self.outcome


def delegates(directory: Path, runner: Canned, stderr: io.StringIO) -> Delegates:
    write(directory / "bridge", b"#!/bin/sh\n")
    return Delegates((str(directory),), {"CNI_PATH": str(directory)}, stderr, runner)


@pytest.mark.parametrize(
    ("config_version", "result_version"),
    [("1.0.0", "0.4.0"), ("0.3.1", "1.0.0"), ("0.4.0", "0.3.1"), (None, "1.0.0")],
)
def test_an_add_result_of_another_version_is_101_naming_both(
    dirs: tuple[Path, Path], config_version: str | None, result_version: str
) -> None:
    result = {"cniVersion": result_version, "ips": []}
    runner = Canned(Outcome(0, json.dumps(result).encode(), b""))
    config = {"type": "bridge", "name": "cbr0"}
    if config_version is not None:
        config["cniVersion"] = config_version
    called = delegates(dirs[0], runner, io.StringIO()).call(config, "ADD")
    assert isinstance(called, Failure)
    error = called.failure()
    assert error.code == 101
    assert "'bridge'" in error.msg
    assert repr(result_version) in error.msg
    assert repr(config_version or "0.1.0") in error.msg


@pytest.mark.parametrize("result_version", ["1.0.0", "", None])
def test_an_add_result_of_the_configs_version_or_none_is_the_result(
    dirs: tuple[Path, Path], result_version: str | None
) -> None:
    # libcni reads a result without cniVersion in its configuration's version.
    result: dict[str, object] = {"ips": []}
    if result_version is not None:
        result["cniVersion"] = result_version
    runner = Canned(Outcome(0, json.dumps(result).encode(), b""))
    config = {"type": "bridge", "name": "cbr0", "cniVersion": "1.0.0"}
    assert delegates(dirs[0], runner, io.StringIO()).call(config, "ADD") == Success(result)


def test_other_commands_are_not_held_to_the_configs_version(dirs: tuple[Path, Path]) -> None:
    answer = {"cniVersion": "1.1.0", "supportedVersions": ["1.0.0", "1.1.0"]}
    runner = Canned(Outcome(0, json.dumps(answer).encode(), b""))
    config = {"type": "bridge", "cniVersion": "0.4.0"}
    assert delegates(dirs[0], runner, io.StringIO()).call(config, "VERSION") == Success(answer)


def test_dropped_stderr_is_said_and_its_tail_passed_on(dirs: tuple[Path, Path]) -> None:
    runner = Canned(Outcome(0, b"", b"...the last words\n", stderr_dropped=5_000_000))
    stderr = io.StringIO()
    assert delegates(dirs[0], runner, stderr).call({"type": "bridge"}, "DEL") == Success(None)
    assert "first 5000000 bytes are dropped" in stderr.getvalue()
    assert stderr.getvalue().endswith("...the last words\n")


# ---------------------------------------------------------------- ADD through the shell


class WrongVersion(StandinRunner):
    """The stand-ins, except that ADD answers in 0.4.0 whatever it was asked."""

    def __call__(self, executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        outcome = super().__call__(executable, env, stdin)
        if env["CNI_COMMAND"] != "ADD":
            return outcome
        result = {**json.loads(outcome.stdout), "cniVersion": "0.4.0"}
        return outcome._replace(stdout=json.dumps(result).encode())


class Flooding(StandinRunner):
    """The stand-ins, except that ADD printed too much and was killed for it."""

    def __call__(self, executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
        outcome = super().__call__(executable, env, stdin)
        if env["CNI_COMMAND"] != "ADD":
            return outcome
        return Outcome(-9, b"x" * 1000, b"flooding\n", stdout_overflow=True)


def test_add_of_a_result_of_another_version_is_101_and_rolled_back(
    run_plugin: RunPlugin, node: Node
) -> None:
    run = run_plugin(node.env("ADD"), node.netconf("1.0.0"), WrongVersion())
    error = run.error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert "'0.4.0'" in error["msg"]
    assert "'1.0.0'" in error["msg"]
    assert [c["command"] for c in node.standin.calls()] == ["ADD", "DEL"]
    assert node.records() == {}


def test_add_whose_delegate_printed_too_much_is_101_and_rolled_back(
    run_plugin: RunPlugin, node: Node
) -> None:
    run = run_plugin(node.env("ADD"), node.netconf("1.0.0"), Flooding())
    error = run.error()
    assert error["code"] == 101
    assert "'bridge'" in error["msg"]
    assert "printed more than 16 MiB" in error["msg"]
    assert "flooding" in error["details"]
    assert [c["command"] for c in node.standin.calls()] == ["ADD", "DEL"]
    assert node.records() == {}


def test_add_whose_delegate_is_a_text_file_executes_nothing_and_stores_nothing(
    run_plugin: RunPlugin, node: Node
) -> None:
    bridge = node.standin.directory / "bridge"
    bridge.write_text(f"{sys.executable} -c 'print(1)'\n", encoding="utf-8")
    run = run_plugin(node.env("ADD"), node.netconf("1.0.0"))
    error = run.error()
    assert error["code"] == 100
    assert "'bridge'" in error["msg"]
    assert "neither an ELF program nor a #! script" in error["msg"]
    assert node.standin.calls() == []
    assert node.records() == {}


def test_an_add_looks_its_delegate_up_once(
    monkeypatch: pytest.MonkeyPatch, run_plugin: RunPlugin, node: Node
) -> None:
    import shell.delegate

    looked_up: list[str] = []

    def counting(plugin_type: str, path: tuple[str, ...]) -> object:
        looked_up.append(plugin_type)
        return find_plugin(plugin_type, path)

    monkeypatch.setattr(shell.delegate, "find_plugin", counting)
    run_plugin(node.env("ADD"), node.netconf()).result()
    assert looked_up == ["bridge"]
