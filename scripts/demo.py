"""A real ADD, CHECK and DEL through the installed ``flannel`` plugin.

Everything happens in two network namespaces made for the run: a "node"
namespace in which the plugin and its delegates run (so the bridge, its
routes and its sysctls never touch the host), and a "pod" namespace that
receives the interface. Both are removed at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SUBNET_ENV = """\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""
CNI_PATH = os.environ.get("DEMO_CNI_PATH", "/usr/lib/cni:/opt/cni/bin")


def flannel_executable() -> str:
    beside = Path(sys.executable).parent / "flannel"
    found = str(beside) if beside.exists() else shutil.which("flannel")
    if found is None:
        sys.exit("demo: the flannel executable is not installed (run scripts/bootstrap)")
    return found


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def call(node: str, command: str, conf: dict[str, object], env: dict[str, str]) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", node, flannel_executable()],
        input=json.dumps(conf),
        env={**os.environ, **env, "CNI_COMMAND": command},
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"demo: {command} failed (exit {done.returncode}): {done.stdout.strip()}")
    return done.stdout


def main() -> None:
    suffix = f"{os.getpid()}"
    node, pod = f"flcni-demo-node-{suffix}", f"flcni-demo-pod-{suffix}"
    work = Path(tempfile.mkdtemp(prefix="flcni-demo-"))
    try:
        ip("netns", "add", node)
        ip("netns", "add", pod)
        ip("-n", node, "link", "set", "lo", "up")
        (work / "subnet.env").write_text(SUBNET_ENV)
        conf: dict[str, object] = {
            "cniVersion": "1.0.0",
            "name": "cbr0",
            "type": "flannel",
            "subnetFile": str(work / "subnet.env"),
            "dataDir": str(work / "flannel"),
            "delegate": {"hairpinMode": True, "isDefaultGateway": True},
            "ipam": {"dataDir": str(work / "host-local")},
        }
        env = {
            "CNI_CONTAINERID": f"demo{suffix}",
            "CNI_NETNS": f"/var/run/netns/{pod}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": CNI_PATH,
        }
        print(f"subnet.env (built-in default):\n{SUBNET_ENV}")
        result = json.loads(call(node, "ADD", conf, env))
        print("ADD result:", json.dumps(result, indent=2), sep="\n")
        print(f"eth0 in {pod}:", ip("-n", pod, "-brief", "address", "show", "eth0").strip())
        print("routes:", ip("-n", pod, "route").strip(), sep="\n")
        call(node, "CHECK", {**conf, "prevResult": result}, env)
        print("CHECK: ok")
        call(node, "DEL", {**conf, "prevResult": result}, env)
        left = sorted(os.listdir(work / "flannel"))
        if left:
            raise SystemExit(f"demo: DEL left state records behind: {left}")
        print("DEL: ok, no state left")
    finally:
        for namespace in (pod, node):
            subprocess.run(["ip", "netns", "delete", namespace], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
