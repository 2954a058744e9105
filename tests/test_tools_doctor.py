"""``flannel-cni doctor`` against real broken setups.

Most tests build a node in tmp_path (a conf dir, subnet.env, a CNI path of
stand-in plugins plus the installed ``flannel``), ADD pods through the real
plugin, break one thing and expect exactly that problem, with exit 1, in
both the human and the ``--json`` output. The last test does it for real:
Debian's bridge and host-local in a network namespace standing in for the
node, a pod namespace that is then deleted, and a subnet that moves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.records import NETNS_ATTRIBUTE
from tests.conftest import (
    CONTAINER_ID,
    SUBNET_ENV_MOVED,
    SUBNET_ENV_V4,
    JsonObject,
    Node,
    RunPlugin,
    RunTool,
    ToolRun,
    flannel_executable,
    install_standin,
)

RECORD = f"{CONTAINER_ID}:eth0"
AGE = re.compile(r"\(age \d+[smhd]\)")
PLUGINS = ["flannel", "bridge", "host-local", "portmap"]


@dataclass(frozen=True)
class Doctored:
    """A doctor run: exit status, human lines and the --json report, which must agree."""

    status: int
    lines: list[str]
    report: dict[str, Any]

    def problems(self) -> list[str]:
        return [line for line in self.lines if line.startswith("problem ")]

    def checks(self, check: str) -> list[dict[str, Any]]:
        checks: list[dict[str, Any]] = self.report["checks"]
        return [c for c in checks if c["check"] == check]


@dataclass(frozen=True)
class Setup:
    """A node with a kube-flannel conf dir and a CNI path that has every plugin it needs."""

    node: Node
    conf_dir: Path
    cni_bin: Path
    netns: Path
    run_tool: RunTool
    run_plugin: RunPlugin

    def conf(self) -> JsonObject:
        text = (self.conf_dir / "10-flannel.conflist").read_text(encoding="utf-8")
        conf: JsonObject = json.loads(text)
        return conf

    def request(self) -> JsonObject:
        listed = self.conf()
        return {**listed["plugins"][0], "name": listed["name"], "cniVersion": listed["cniVersion"]}

    def add(self, container: str = CONTAINER_ID, netns: Path | None = None) -> None:
        env = self.node.env("ADD", CNI_CONTAINERID=container, CNI_NETNS=str(netns or self.netns))
        self.run_plugin(env, self.request()).result()

    def doctor(self, *extra: str, env: Mapping[str, str] | None = None) -> Doctored:
        args = ["doctor", "--conf-dir", str(self.conf_dir), "--cni-path", str(self.cni_bin)]
        return doctor(self.run_tool, [*args, *extra], env)


def doctor(run_tool: RunTool, args: list[str], env: Mapping[str, str] | None = None) -> Doctored:
    """Run doctor twice, human and --json, and check that both say the same."""
    human: ToolRun = run_tool(*args, env=env)
    machine: ToolRun = run_tool(*args, "--json", env=env)
    report = machine.json()
    assert human.status == machine.status
    assert human.status in (0, 1), human.stderr
    assert human.stderr == ""
    assert report["ok"] is (human.status == 0)
    assert report["ok"] is all(c["ok"] for c in report["checks"])
    expected = [
        f"{'ok' if c['ok'] else 'problem':<8}{c['check']} {c['subject']} {c['message']}"
        for c in report["checks"]
    ]
    # The two runs are moments apart: ages may differ by a second.
    assert [AGE.sub("(age)", line) for line in human.lines()] == [
        AGE.sub("(age)", line) for line in expected
    ]
    return Doctored(human.status, human.lines(), report)


@pytest.fixture
def setup(tmp_path: Path, node: Node, run_tool: RunTool, run_executable: RunPlugin) -> Setup:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    listed = {
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {
                "type": "flannel",
                "subnetFile": str(node.subnet_env.path),
                "dataDir": str(node.data_dir),
                "delegate": {"hairpinMode": True, "isDefaultGateway": True},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (conf_dir / "10-flannel.conflist").write_text(json.dumps(listed), encoding="utf-8")
    install_standin(node.standin.directory, "portmap")
    (node.standin.directory / "flannel").symlink_to(flannel_executable())
    netns = tmp_path / "netns" / "pod-1"  # stands in for /var/run/netns/<pod>
    netns.parent.mkdir()
    netns.touch()
    return Setup(node, conf_dir, node.standin.directory, netns, run_tool, run_executable)


# -- a healthy node -------------------------------------------------------------------------------


def test_a_healthy_node_has_no_problem(setup: Setup) -> None:
    setup.add()
    found = setup.doctor()
    assert found.status == 0, found.lines
    assert found.problems() == []
    assert [c["subject"] for c in found.checks("plugin")] == PLUGINS
    assert [c["subject"] for c in found.checks("subnet.env")] == [str(setup.node.subnet_env.path)]
    assert [c["subject"] for c in found.checks("dataDir")] == [str(setup.node.data_dir)]
    assert [c["subject"] for c in found.checks("record")] == [RECORD]
    assert found.checks("record")[0]["message"].startswith(
        f"bridge 10.244.7.0/24, namespace {setup.netns} exists (age "
    )
    assert found.checks("subnet.env")[0]["message"].startswith("complete (age 0s)")
    for plugin in found.checks("plugin"):
        assert "supports 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0" in plugin["message"]


def test_a_node_before_its_first_add_is_healthy(setup: Setup) -> None:
    found = setup.doctor()
    assert found.status == 0, found.lines
    assert found.checks("dataDir")[0]["message"] == "does not exist yet: the first ADD creates it"
    assert found.checks("record") == []


def test_cni_path_comes_from_the_environment_then_the_default(setup: Setup) -> None:
    args = ["doctor", "--conf-dir", str(setup.conf_dir)]
    from_env = doctor(setup.run_tool, args, {"CNI_PATH": f"/nonexistent:{setup.cni_bin}"})
    assert from_env.status == 0, from_env.lines
    default = doctor(setup.run_tool, args)
    assert all("/opt/cni/bin" in c["message"] for c in default.checks("plugin"))
    assert str(setup.cni_bin) not in json.dumps(default.report)


# -- records: gone namespaces and drift -----------------------------------------------------------


def test_a_gone_namespace_and_a_moved_subnet_are_both_reported(setup: Setup) -> None:
    setup.add()
    setup.add("other-pod", setup.netns.with_name("pod-2"))  # its namespace never existed
    setup.netns.unlink()
    setup.node.subnet_env.write(SUBNET_ENV_MOVED)
    found = setup.doctor()
    assert found.status == 1
    gone = f"namespace {setup.netns} no longer exists: DEL or GC will release it"
    assert found.problems() == [
        f"problem record {RECORD} {gone}",
        (
            f"problem record {RECORD} the container's subnet 10.244.7.0/24 is no longer this"
            " node's flannel subnet (10.244.9.0/24): recreate the container"
        ),
        (
            f"problem record other-pod:eth0 namespace {setup.netns.with_name('pod-2')} no longer"
            " exists: DEL or GC will release it"
        ),
        (
            "problem record other-pod:eth0 the container's subnet 10.244.7.0/24 is no longer this"
            " node's flannel subnet (10.244.9.0/24): recreate the container"
        ),
    ]
    assert [c["ok"] for c in found.checks("record")] == [False] * 4


def test_after_del_the_node_is_healthy_again(setup: Setup) -> None:
    setup.add()
    setup.netns.unlink()
    assert setup.doctor().status == 1
    env = setup.node.env("DEL", CNI_NETNS="")
    setup.run_plugin(env, setup.request()).silent_success()
    found = setup.doctor()
    assert found.status == 0, found.lines
    assert found.checks("dataDir")[0]["message"].endswith("0 record(s)")


def test_records_without_a_namespace_are_unknown_not_a_problem(setup: Setup) -> None:
    setup.add()
    os.removexattr(setup.node.data_dir / RECORD, NETNS_ATTRIBUTE)
    go = setup.node.data_dir / "goplugin0"  # as the Go plugin stored it: no xattr
    go.write_bytes((setup.node.data_dir / RECORD).read_bytes())
    go.chmod(0o600)
    found = setup.doctor()
    assert found.status == 0, found.lines
    records = found.checks("record")
    assert [c["subject"] for c in records] == [RECORD, "goplugin0"]
    assert all("namespace unknown" in c["message"] for c in records)


def test_a_drifted_go_record_is_reported(setup: Setup) -> None:
    setup.add()
    go = setup.node.data_dir / "goplugin0"
    record = {"name": "cbr0", "type": "bridge", "ipam": {"subnet": "10.244.3.0/24"}}
    go.write_text(json.dumps(record), encoding="utf-8")
    go.chmod(0o600)
    found = setup.doctor()
    assert found.status == 1
    assert [line.split()[2] for line in found.problems()] == ["goplugin0"]
    assert "10.244.3.0/24 is no longer this node's" in found.problems()[0]


def test_an_unreadable_record_is_reported(setup: Setup) -> None:
    setup.add()
    (setup.node.data_dir / RECORD).write_bytes(b"\x00garbage")
    found = setup.doctor()
    assert found.status == 1
    assert len(found.problems()) == 1
    assert "cannot be read (state record" in found.problems()[0]
    assert "DEL replays a fresh rendering instead" in found.problems()[0]


# -- subnet.env -----------------------------------------------------------------------------------


def test_a_missing_subnet_env_is_a_problem_and_drift_is_not_guessed(setup: Setup) -> None:
    setup.add()
    setup.node.subnet_env.remove()
    found = setup.doctor()
    assert found.status == 1
    assert len(found.problems()) == 1
    assert found.problems()[0].startswith(
        f"problem subnet.env {setup.node.subnet_env.path} does not exist: flanneld"
    )
    assert [c["ok"] for c in found.checks("record")] == [True]


def test_an_incomplete_subnet_env_names_the_missing_keys(setup: Setup) -> None:
    setup.node.subnet_env.write("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n")
    found = setup.doctor()
    assert found.status == 1
    message = found.checks("subnet.env")[0]["message"]
    assert message.startswith("is incomplete, missing FLANNEL_MTU, FLANNEL_IPMASQ")
    assert message.endswith("(age 0s)")


def test_an_old_subnet_env_is_reported_but_not_a_problem(setup: Setup) -> None:
    path = setup.node.subnet_env.path
    two_days_ago = path.stat().st_mtime - 2 * 86400
    os.utime(path, (two_days_ago, two_days_ago))
    found = setup.doctor()
    assert found.status == 0
    assert found.checks("subnet.env")[0]["message"].startswith("complete (age 2d)")


def test_subnet_file_option_overrides_the_conf(setup: Setup, tmp_path: Path) -> None:
    setup.add()
    moved = tmp_path / "moved.env"
    moved.write_text(SUBNET_ENV_MOVED, encoding="utf-8")
    found = setup.doctor("--subnet-file", str(moved))
    assert [c["subject"] for c in found.checks("subnet.env")] == [str(moved)]
    assert found.status == 1
    assert "no longer this node's flannel subnet (10.244.9.0/24)" in found.problems()[0]


# -- plugins --------------------------------------------------------------------------------------


def test_a_missing_plugin_is_a_problem(setup: Setup) -> None:
    (setup.cni_bin / "portmap").unlink()
    found = setup.doctor()
    assert found.status == 1
    assert found.problems() == [
        (
            f"problem plugin portmap not found in CNI_PATH {setup.cni_bin}: install it there"
            " (Debian: containernetworking-plugins)"
        )
    ]


def test_a_plugin_that_is_not_executable_is_named(setup: Setup) -> None:
    (setup.cni_bin / "host-local").chmod(0o644)
    found = setup.doctor()
    assert found.status == 1
    assert f"({setup.cni_bin}/host-local is not executable)" in found.problems()[0]


def test_a_missing_flannel_is_a_problem(setup: Setup) -> None:
    (setup.cni_bin / "flannel").unlink()
    found = setup.doctor()
    assert found.status == 1
    assert [c["ok"] for c in found.checks("plugin")] == [False, True, True, True]
    assert "command -v flannel" in found.checks("plugin")[0]["message"]


def test_a_delegate_that_does_not_speak_the_list_s_version(setup: Setup) -> None:
    setup.node.standin.script({"bridge/VERSION": {"supportedVersions": ["0.1.0", "0.2.0"]}})
    found = setup.doctor(env=setup.node.standin.env())
    assert found.status == 1
    assert found.problems() == [
        (
            f"problem plugin bridge {setup.cni_bin}/bridge supports 0.1.0, 0.2.0; network cbr0 uses"
            " 0.3.1: ADD fails with error 1 (use a listed version)"
        )
    ]
    asked = setup.node.standin.calls("VERSION")
    assert sorted(c["plugin"] for c in asked) == [
        "bridge",
        "bridge",
        "host-local",
        "host-local",
        "portmap",
        "portmap",
    ]
    assert all(c["path"] == str(setup.cni_bin) for c in asked)


def test_a_plugin_whose_version_fails(setup: Setup) -> None:
    setup.node.standin.script({"host-local/VERSION": {"error": {"code": 999, "msg": "boom"}}})
    found = setup.doctor(env=setup.node.standin.env())
    assert found.status == 1
    assert found.problems() == [
        f"problem plugin host-local {setup.cni_bin}/host-local: VERSION failed: boom"
    ]


# -- dataDir --------------------------------------------------------------------------------------


def test_data_dir_permissions_and_ownership(setup: Setup) -> None:
    setup.add()
    data_dir = setup.node.data_dir
    data_dir.chmod(0o755)
    os.chown(data_dir, 65534, 65534)
    (data_dir / RECORD).chmod(0o644)
    found = setup.doctor()
    assert found.status == 1
    assert found.problems() == [
        f"problem dataDir {data_dir} is owned by uid 65534, not root: chown root {data_dir}",
        (
            f"problem dataDir {data_dir} has mode 0755, not 0700: others can reach the records"
            f" (chmod 700 {data_dir})"
        ),
        f"problem record {RECORD} has mode 0644, not 0600",
    ]


def test_strangers_in_data_dir(setup: Setup) -> None:
    setup.add()
    data_dir = setup.node.data_dir
    (data_dir / "planted:eth0").symlink_to("/etc/passwd")
    old_temp = data_dir / ".tmp-00112233"
    old_temp.write_bytes(b"{}")
    os.utime(old_temp, (0, 0))
    (data_dir / ".tmp-fresh").write_bytes(b"{}")  # an ADD writing right now
    (data_dir / "notes.txt~").write_bytes(b"")
    found = setup.doctor()
    assert found.status == 1
    assert [line.split(" ", 3)[2] for line in found.problems()] == [
        ".tmp-00112233",
        "notes.txt~",
        "planted:eth0",
    ]
    assert "interrupted ADD" in found.problems()[0]
    assert "is a symlink" in found.problems()[2]


def test_a_symlinked_data_dir_is_a_problem(setup: Setup, tmp_path: Path) -> None:
    setup.add()
    link = tmp_path / "link"
    link.symlink_to(setup.node.data_dir)
    found = setup.doctor("--data-dir", str(link))
    assert found.status == 1
    assert found.problems() == [
        (
            f"problem dataDir {link} is a symlink, which the plugin refuses:"
            " point dataDir at a real directory"
        )
    ]


# -- the configuration ----------------------------------------------------------------------------


def test_a_missing_conf_dir_is_a_problem(setup: Setup, tmp_path: Path) -> None:
    missing = tmp_path / "no-net.d"
    args = ["doctor", "--conf-dir", str(missing), "--cni-path", str(setup.cni_bin)]
    found = doctor(setup.run_tool, [*args, "--subnet-file", str(setup.node.subnet_env.path)])
    assert found.status == 1
    assert found.problems() == [f"problem conf {missing} does not exist: no network is configured"]
    assert found.checks("plugin") == []


def test_a_broken_file_and_a_list_without_flannel(setup: Setup) -> None:
    (setup.conf_dir / "05-broken.conf").write_bytes(b"{")
    other = {"name": "other", "cniVersion": "1.0.0", "plugins": [{"type": "macvlan"}]}
    (setup.conf_dir / "20-other.conflist").write_text(json.dumps(other), encoding="utf-8")
    (setup.conf_dir / "README").write_bytes(b"not a configuration")
    found = setup.doctor()
    assert found.status == 1
    assert len(found.problems()) == 1
    assert found.problems()[0].startswith(
        f"problem conf {setup.conf_dir}/05-broken.conf is not valid JSON"
    )
    assert [c["subject"] for c in found.checks("plugin")] == PLUGINS  # macvlan is not ours


def test_an_invalid_flannel_entry_is_a_problem(setup: Setup) -> None:
    listed = setup.conf()
    listed["plugins"][0]["delegate"]["name"] = "mine"
    (setup.conf_dir / "10-flannel.conflist").write_text(json.dumps(listed), encoding="utf-8")
    found = setup.doctor()
    assert found.status == 1
    assert found.problems()[0].startswith(
        f"problem conf {setup.conf_dir}/10-flannel.conflist flannel entry: delegate must not"
        " contain 'name'"
    )
    assert "no network configuration here" in found.problems()[1]


@pytest.mark.parametrize(
    "args", [["doctor", "--bogus"], ["doctor", "extra"], ["doctor", "--json=1"]]
)
def test_usage_errors_exit_2(run_tool: RunTool, args: list[str]) -> None:
    done = run_tool(*args)
    assert done.status == 2
    assert done.stdout == ""
    assert done.stderr.startswith("usage: flannel-cni")


# -- for real: Debian's plugins in a node namespace, a pod namespace that goes away ---------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=60)


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


@pytest.fixture
def real_node() -> Iterator[tuple[str, str]]:
    """A node namespace and a pod namespace, removed whatever happens."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces)")
    for plugin in ("bridge", "host-local", "portmap"):
        if not os.access(f"/usr/lib/cni/{plugin}", os.X_OK):
            pytest.fail(
                f"/usr/lib/cni/{plugin} is missing: apt-get install containernetworking-plugins"
            )
    pid = os.getpid()
    node, pod = f"flcni-doctor-node-{pid}", f"flcni-doctor-{pid}"
    try:
        ip("netns", "add", node)
        ip("netns", "add", pod)
        ip("-n", node, "link", "set", "lo", "up")
        yield node, pod
    finally:
        for name in (pod, node):
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
    assert not {node, pod} & namespaces()


def flannel_in(node: str, command: str, conf: JsonObject, env: Mapping[str, str]) -> ToolRun:
    done = subprocess.run(
        ["ip", "netns", "exec", node, flannel_executable()],
        input=json.dumps(conf).encode(),
        env={**env, "CNI_COMMAND": command},
        capture_output=True,
        check=False,
        timeout=60,
    )
    return ToolRun(done.returncode, done.stdout.decode(), done.stderr.decode())


def test_doctor_on_a_real_node_whose_pod_is_gone_and_whose_subnet_moved(
    tmp_path: Path, run_tool: RunTool, real_node: tuple[str, str]
) -> None:
    node, pod = real_node
    cni_bin = tmp_path / "cni-bin"
    cni_bin.mkdir()
    (cni_bin / "flannel").symlink_to(flannel_executable())
    cni_path = f"{cni_bin}:/usr/lib/cni"
    subnet_env = tmp_path / "subnet.env"
    subnet_env.write_text(SUBNET_ENV_V4, encoding="utf-8")
    data_dir, ipam_dir = tmp_path / "flannel", tmp_path / "host-local"
    entry = {
        "type": "flannel",
        "subnetFile": str(subnet_env),
        "dataDir": str(data_dir),
        "delegate": {"hairpinMode": True, "isDefaultGateway": True},
        "ipam": {"dataDir": str(ipam_dir)},
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    listed = {"name": "cbr0", "cniVersion": "1.0.0", "plugins": [entry, portmap]}
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    (conf_dir / "10-flannel.conflist").write_text(json.dumps(listed), encoding="utf-8")
    request = {**entry, "name": "cbr0", "cniVersion": "1.0.0"}
    netns = f"/var/run/netns/{pod}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_CONTAINERID": f"doctor{os.getpid()}",
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": cni_path,
    }
    record = f"doctor{os.getpid()}:eth0"
    args = ["doctor", "--conf-dir", str(conf_dir), "--cni-path", cni_path]

    added = flannel_in(node, "ADD", request, env)
    assert added.status == 0, (added.stdout, added.stderr)
    assert json.loads(added.stdout)["ips"][0]["address"].startswith("10.244.7.")
    healthy = doctor(run_tool, args)
    assert healthy.status == 0, healthy.lines
    assert [c["subject"] for c in healthy.checks("plugin")] == PLUGINS
    assert "/usr/lib/cni/bridge supports" in healthy.checks("plugin")[1]["message"]
    assert f"namespace {netns} exists" in healthy.checks("record")[0]["message"]

    ip("netns", "delete", pod)
    subnet_env.write_text(SUBNET_ENV_MOVED, encoding="utf-8")
    broken = doctor(run_tool, args)
    assert broken.status == 1
    assert broken.problems() == [
        f"problem record {record} namespace {netns} no longer exists: DEL or GC will release it",
        (
            f"problem record {record} the container's subnet 10.244.7.0/24 is no longer this node's"
            " flannel subnet (10.244.9.0/24): recreate the container"
        ),
    ]
    assert broken.report["ok"] is False
    assert [(c["subject"], c["ok"]) for c in broken.checks("record")] == [
        (record, False),
        (record, False),
    ]

    deleted = flannel_in(node, "DEL", request, {**env, "CNI_NETNS": ""})
    assert deleted.status == 0, (deleted.stdout, deleted.stderr)
    assert os.listdir(data_dir) == []
    reserved = [p.name for p in (ipam_dir / "cbr0").iterdir() if p.name.startswith("10.")]
    assert reserved == []
    assert doctor(run_tool, args).status == 0
