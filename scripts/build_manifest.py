"""Build deploy/flannel-cni.yaml: install dist/flannel and its conflist on every node.

In the style of kube-flannel's manifest, for use beside it (flanneld keeps
running from kube-flannel; this replaces its install-cni-plugin and
install-cni init containers). No image is built for this project: the
plugin file travels in a ConfigMap (binaryData) and stock busybox copies it
into place; a pause container keeps the pod alive.

Usage: python scripts/build_manifest.py [--plugin dist/flannel] [--output deploy/flannel-cni.yaml]
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE: Final = "kube-flannel"
BUSYBOX: Final = "docker.io/library/busybox:1.36.1"
PAUSE: Final = "registry.k8s.io/pause:3.10"
CONFLIST_NAME: Final = "10-flannel.conflist"
CONFLIST: Final = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}

# The init containers' scripts. Each takes its directories from the environment
# so that the tests run the very same text against temporary directories.
CHECK_HOST_PYTHON: Final = """\
set -eu
too_old='import sys; sys.exit(sys.version_info < (3, 11))'
if ! chroot "$HOST_ROOT" /usr/bin/env python3 -c "$too_old"; then
  echo "flannel-cni: the node needs python3 3.11 or later on its PATH" >&2
  exit 1
fi
"""
# Copy under a temporary name in the target directory, then rename: a runtime
# never executes or reads a half-written file.
INSTALL_PLUGIN: Final = """\
set -eu
cp "$SOURCE/flannel" "$CNI_BIN_DIR/.flannel.tmp"
chmod 0755 "$CNI_BIN_DIR/.flannel.tmp"
mv -f "$CNI_BIN_DIR/.flannel.tmp" "$CNI_BIN_DIR/flannel"
"""
INSTALL_CONFLIST: Final = f"""\
set -eu
cp "$SOURCE/{CONFLIST_NAME}" "$CNI_CONF_DIR/.{CONFLIST_NAME}.tmp"
mv -f "$CNI_CONF_DIR/.{CONFLIST_NAME}.tmp" "$CNI_CONF_DIR/{CONFLIST_NAME}"
"""


def _init(
    name: str, script: str, env: dict[str, str], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "image": BUSYBOX,
        "command": ["/bin/sh", "-c", script],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }


def manifest(plugin: bytes) -> list[dict[str, Any]]:
    labels = {"app": "flannel-cni"}
    plugin_cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flannel-cni-plugin", "namespace": NAMESPACE, "labels": labels},
        "binaryData": {"flannel": base64.b64encode(plugin).decode("ascii")},
    }
    conf_cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flannel-cni-conf", "namespace": NAMESPACE, "labels": labels},
        "data": {CONFLIST_NAME: json.dumps(CONFLIST, indent=2) + "\n"},
    }
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "flannel-cni-install", "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                    "initContainers": [
                        _init(
                            "check-host-python",
                            CHECK_HOST_PYTHON,
                            {"HOST_ROOT": "/host"},
                            [{"name": "host-root", "mountPath": "/host", "readOnly": True}],
                        ),
                        _init(
                            "install-cni-plugin",
                            INSTALL_PLUGIN,
                            {"SOURCE": "/plugin", "CNI_BIN_DIR": "/opt/cni/bin"},
                            [
                                {"name": "plugin", "mountPath": "/plugin", "readOnly": True},
                                {"name": "cni-plugin", "mountPath": "/opt/cni/bin"},
                            ],
                        ),
                        _init(
                            "install-cni",
                            INSTALL_CONFLIST,
                            {"SOURCE": "/conf", "CNI_CONF_DIR": "/etc/cni/net.d"},
                            [
                                {"name": "conf", "mountPath": "/conf", "readOnly": True},
                                {"name": "cni", "mountPath": "/etc/cni/net.d"},
                            ],
                        ),
                    ],
                    "containers": [
                        {
                            "name": "pause",
                            "image": PAUSE,
                            "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}},
                        }
                    ],
                    "volumes": [
                        {"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}},
                        {"name": "plugin", "configMap": {"name": "flannel-cni-plugin"}},
                        {"name": "conf", "configMap": {"name": "flannel-cni-conf"}},
                        {
                            "name": "cni-plugin",
                            "hostPath": {"path": "/opt/cni/bin", "type": "DirectoryOrCreate"},
                        },
                        {
                            "name": "cni",
                            "hostPath": {"path": "/etc/cni/net.d", "type": "DirectoryOrCreate"},
                        },
                    ],
                },
            },
        },
    }
    return [plugin_cm, conf_cm, daemonset]


def render(documents: list[dict[str, Any]]) -> str:
    """YAML with one JSON document per section: JSON is YAML, and needs no library."""
    header = "# Generated by scripts/build_manifest.py from dist/flannel: do not edit.\n"
    return header + "".join(f"---\n{json.dumps(doc, indent=2)}\n" for doc in documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", type=Path, default=ROOT / "dist" / "flannel")
    parser.add_argument("--output", type=Path, default=ROOT / "deploy" / "flannel-cni.yaml")
    args = parser.parse_args()
    text = render(manifest(args.plugin.read_bytes()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"{args.output} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
