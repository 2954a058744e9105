"""The single-file plugin and the Kubernetes install: built, validated offline, and
the install scripts run for real against temporary directories."""

from __future__ import annotations

import ast
import base64
import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from core.netconf import parse_netconf
from scripts.build_manifest import (
    CHECK_HOST_PYTHON,
    CONFLIST,
    CONFLIST_NAME,
    INSTALL_CONFLIST,
    INSTALL_PLUGIN,
    manifest,
    render,
)
from scripts.build_zipapp import INTERPRETER, build

KUBE_FLANNEL_CONFLIST = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
CONFIGMAP_LIMIT = 1024 * 1024
# What all annotations of one object may hold together (apimachinery's TotalAnnotationSizeLimitB).
ANNOTATIONS_LIMIT = 256 * 1024
INSTALL_DOC = Path(__file__).resolve().parent.parent / "docs" / "install.md"


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dist") / "flannel", INTERPRETER)


@pytest.fixture(scope="module")
def documents(plugin_file: Path) -> list[dict[str, Any]]:
    return manifest(plugin_file.read_bytes())


def by_kind(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def sh(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_single_file_runs_on_a_python_without_its_dependencies(plugin_file: Path) -> None:
    done = subprocess.run(
        ["/usr/bin/python3", "-I", str(plugin_file)],
        env={"CNI_COMMAND": "VERSION"},
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1.1.0" in json.loads(done.stdout)["supportedVersions"]
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import returns"], capture_output=True, check=False
    )
    assert probe.returncode != 0, "the host python3 has returns: the test would prove nothing"


def test_the_single_file_carries_every_module_its_modules_import(plugin_file: Path) -> None:
    """Imports inside functions included: a module imported on use and left out of
    the build would fail only on the command path that uses it."""
    with zipfile.ZipFile(plugin_file) as archive:
        names = set(archive.namelist())
    carried = {n.removesuffix(".py").replace("/", ".") for n in names if n.endswith(".py")}
    carried = {n.removesuffix(".__init__") for n in carried}
    wanted: set[str] = set()
    for name in carried:
        if name.split(".")[0] not in ("core", "shell"):
            continue
        tree = ast.parse(zipfile.Path(plugin_file, _source_of(name, names)).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                wanted.add(node.module)
            elif isinstance(node, ast.Import):
                wanted.update(alias.name for alias in node.names)
    own = {m for m in wanted if m.split(".")[0] in ("core", "shell")}
    assert own - carried == set()
    assert "shell.tools" not in carried


def _source_of(module: str, names: set[str]) -> str:
    as_module = module.replace(".", "/") + ".py"
    return as_module if as_module in names else module.replace(".", "/") + "/__init__.py"


def test_the_single_file_is_executable_and_starts_with_an_interpreter_line(
    plugin_file: Path,
) -> None:
    assert plugin_file.read_bytes().startswith(b"#!/usr/bin/env -S python3 -I -S\n")
    assert plugin_file.stat().st_mode & stat.S_IXUSR


@pytest.mark.parametrize("index", [0, 1, 2])
def test_every_document_validates_against_the_kubernetes_schema(
    documents: list[dict[str, Any]], index: int
) -> None:
    kubernetes_validate.validate(documents[index], latest_version(), strict=True)


def test_the_plugin_travels_whole_in_a_configmap_under_the_size_limit(
    documents: list[dict[str, Any]], plugin_file: Path
) -> None:
    configmap = by_kind(documents, "ConfigMap", "flannel-cni-plugin")
    assert base64.b64decode(configmap["binaryData"]["flannel"]) == plugin_file.read_bytes()
    assert len(json.dumps(configmap)) < CONFIGMAP_LIMIT


def test_the_documented_apply_is_server_side_as_the_plugin_outgrows_an_annotation(
    documents: list[dict[str, Any]],
) -> None:
    # A client-side apply copies the object into the last-applied-configuration
    # annotation, which cannot hold the plugin's ConfigMap.
    configmap = by_kind(documents, "ConfigMap", "flannel-cni-plugin")
    assert len(json.dumps(configmap)) > ANNOTATIONS_LIMIT
    applies = [
        line for line in INSTALL_DOC.read_text().splitlines() if line.startswith("kubectl apply")
    ]
    assert applies
    assert all("--server-side" in line.split() for line in applies), applies


def test_the_conflist_is_kube_flannels_and_its_flannel_entry_is_valid(
    documents: list[dict[str, Any]],
) -> None:
    configmap = by_kind(documents, "ConfigMap", "flannel-cni-conf")
    conflist = json.loads(configmap["data"][CONFLIST_NAME])
    assert conflist == CONFLIST == KUBE_FLANNEL_CONFLIST
    entry = {
        **conflist["plugins"][0],
        "name": conflist["name"],
        "cniVersion": conflist["cniVersion"],
    }
    assert parse_netconf(json.dumps(entry).encode(), "ADD").unwrap().name == "cbr0"


def test_the_rendered_manifest_is_yaml_of_the_same_documents(
    documents: list[dict[str, Any]],
) -> None:
    import yaml

    loaded = [d for d in yaml.safe_load_all(render(documents)) if d is not None]
    assert loaded == documents


def test_the_daemonset_runs_the_scripts_under_test(documents: list[dict[str, Any]]) -> None:
    daemonset = by_kind(documents, "DaemonSet", "flannel-cni-install")
    scripts = [c["command"][-1] for c in daemonset["spec"]["template"]["spec"]["initContainers"]]
    assert scripts == [CHECK_HOST_PYTHON, INSTALL_PLUGIN, INSTALL_CONFLIST]


def test_install_plugin_replaces_the_file_atomically(plugin_file: Path, tmp_path: Path) -> None:
    source, target = tmp_path / "configmap", tmp_path / "opt-cni-bin"
    source.mkdir()
    target.mkdir()
    (source / "flannel").write_bytes(plugin_file.read_bytes())
    (target / "flannel").write_bytes(b"the Go plugin")
    old_inode = (target / "flannel").stat().st_ino
    done = sh(INSTALL_PLUGIN, SOURCE=str(source), CNI_BIN_DIR=str(target))
    assert done.returncode == 0, done.stderr
    installed = target / "flannel"
    assert installed.read_bytes() == plugin_file.read_bytes()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    assert installed.stat().st_ino != old_inode, "replaced in place instead of renamed over"
    assert sorted(os.listdir(target)) == ["flannel"]
    version = subprocess.run(
        [str(installed)],
        env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"},
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert version.returncode == 0, version.stderr


def test_install_conflist_places_it_atomically(
    documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    source, target = tmp_path / "configmap", tmp_path / "net.d"
    source.mkdir()
    target.mkdir()
    data = by_kind(documents, "ConfigMap", "flannel-cni-conf")["data"][CONFLIST_NAME]
    (source / CONFLIST_NAME).write_text(data)
    done = sh(INSTALL_CONFLIST, SOURCE=str(source), CNI_CONF_DIR=str(target))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(target)) == [CONFLIST_NAME]
    assert (target / CONFLIST_NAME).read_text() == data


def test_a_failed_copy_leaves_the_installed_plugin_alone(tmp_path: Path) -> None:
    source, target = tmp_path / "empty-configmap", tmp_path / "opt-cni-bin"
    source.mkdir()
    target.mkdir()
    (target / "flannel").write_bytes(b"previous")
    done = sh(INSTALL_PLUGIN, SOURCE=str(source), CNI_BIN_DIR=str(target))
    assert done.returncode != 0
    assert (target / "flannel").read_bytes() == b"previous"


def test_the_host_check_passes_here_and_fails_without_python(tmp_path: Path) -> None:
    assert sh(CHECK_HOST_PYTHON, HOST_ROOT="/").returncode == 0
    empty = tmp_path / "node-without-python"
    empty.mkdir()
    done = sh(CHECK_HOST_PYTHON, HOST_ROOT=str(empty))
    assert done.returncode != 0
    assert "python3 3.11 or later" in done.stderr


def test_building_without_the_projects_environment_says_how_not_a_traceback(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        ["/usr/bin/python3", "scripts/build_zipapp.py", "--output", str(tmp_path / "flannel")],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "scripts/bootstrap" in done.stderr
    assert not (tmp_path / "flannel").exists()
