"""A small CNI runtime that drives plugins the way libcni does (CNI spec 1.1.0, section 3).

It reads a network configuration list, derives each plugin's request
configuration (``cniVersion`` and ``name`` inserted, ``runtimeConfig`` built
only from capabilities the plugin declares, ``prevResult`` chained), caches
the final ADD result per (network, container ID, ifname), hands it to CHECK
and DEL, runs DEL in reverse order, and runs STATUS and GC where the version
has them. Plugins run inside the node's network namespace through
``ip netns exec``, so nothing they create touches the host's.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JsonObject = dict[str, Any]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class PluginError(Exception):
    """A plugin exited non-zero; carries its CNI error object and stderr."""

    def __init__(self, plugin: str, command: str, returncode: int, stdout: str, stderr: str):
        self.plugin, self.command, self.returncode = plugin, command, returncode
        self.stdout, self.stderr = stdout, stderr
        try:
            self.error: JsonObject = json.loads(stdout)
        except ValueError:
            self.error = {}
        super().__init__(
            f"{plugin} {command} exited {returncode}: {stdout.strip()} (stderr: {stderr.strip()})"
        )

    @property
    def code(self) -> object:
        return self.error.get("code")

    @property
    def msg(self) -> str:
        return str(self.error.get("msg", ""))


@dataclass(frozen=True)
class Attachment:
    container_id: str
    netns: str  # path, "" when the namespace is gone
    ifname: str = "eth0"
    capability_args: JsonObject = field(default_factory=dict)


@dataclass
class Runtime:
    cni_path: list[str]
    cache_dir: Path
    node_netns: str  # the name of the namespace the plugins run in
    calls: list[tuple[str, str]] = field(default_factory=list)

    # -- plugin execution -------------------------------------------------------------------

    def find(self, plugin_type: str) -> str:
        for directory in self.cni_path:
            candidate = os.path.join(directory, plugin_type)
            if os.access(candidate, os.X_OK):
                return candidate
        raise FileNotFoundError(f"plugin {plugin_type} not in {self.cni_path}")

    def exec_plugin(
        self, config: JsonObject, command: str, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        plugin = str(config["type"])
        self.calls.append((plugin, command))
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_PATH": ":".join(self.cni_path),
            **env,
        }
        return subprocess.run(
            ["ip", "netns", "exec", self.node_netns, self.find(plugin)],
            input=json.dumps(config),
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def invoke(self, config: JsonObject, command: str, env: dict[str, str]) -> JsonObject | None:
        done = self.exec_plugin(config, command, env)
        if done.returncode != 0:
            raise PluginError(
                str(config["type"]), command, done.returncode, done.stdout, done.stderr
            )
        if command == "ADD":
            result: JsonObject = json.loads(done.stdout)
            return result
        return None

    # -- libcni's derivation of request configurations -----------------------------------------

    @staticmethod
    def request_config(
        conflist: JsonObject,
        plugin: JsonObject,
        capability_args: JsonObject,
        prev_result: JsonObject | None,
        extra: JsonObject | None = None,
    ) -> JsonObject:
        config = dict(plugin)
        config["name"] = conflist["name"]
        config["cniVersion"] = conflist["cniVersion"]
        declared = plugin.get("capabilities") or {}
        runtime_config = {
            key: value for key, value in capability_args.items() if declared.get(key) is True
        }
        if runtime_config:
            config["runtimeConfig"] = runtime_config
        if prev_result is not None:
            config["prevResult"] = prev_result
        config.update(extra or {})
        return config

    def _env(self, attachment: Attachment) -> dict[str, str]:
        return {
            "CNI_CONTAINERID": attachment.container_id,
            "CNI_NETNS": attachment.netns,
            "CNI_IFNAME": attachment.ifname,
        }

    def _cache_file(self, conflist: JsonObject, attachment: Attachment) -> Path:
        return self.cache_dir / f"{conflist['name']}-{attachment.container_id}-{attachment.ifname}"

    def cached_result(self, conflist: JsonObject, attachment: Attachment) -> JsonObject | None:
        path = self._cache_file(conflist, attachment)
        if not path.exists():
            return None
        cached: JsonObject = json.loads(path.read_text())
        return cached

    # -- the operations ---------------------------------------------------------------------------

    def add(self, conflist: JsonObject, attachment: Attachment) -> JsonObject:
        result: JsonObject | None = None
        for plugin in conflist["plugins"]:
            config = self.request_config(conflist, plugin, attachment.capability_args, result)
            result = self.invoke(config, "ADD", self._env(attachment))
        assert result is not None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._cache_file(conflist, attachment).write_text(json.dumps(result))
        return result

    def _prev(self, conflist: JsonObject, attachment: Attachment) -> JsonObject | None:
        # libcni hands the cached result to CHECK and DEL from 0.4.0 on.
        if version_key(conflist["cniVersion"]) < (0, 4, 0):
            return None
        return self.cached_result(conflist, attachment)

    def check(self, conflist: JsonObject, attachment: Attachment) -> None:
        prev = self._prev(conflist, attachment)
        if prev is None:
            raise AssertionError("CHECK needs a cached ADD result")
        for plugin in conflist["plugins"]:
            config = self.request_config(conflist, plugin, attachment.capability_args, prev)
            self.invoke(config, "CHECK", self._env(attachment))

    def delete(self, conflist: JsonObject, attachment: Attachment) -> None:
        prev = self._prev(conflist, attachment)
        for plugin in reversed(conflist["plugins"]):
            config = self.request_config(conflist, plugin, attachment.capability_args, prev)
            self.invoke(config, "DEL", self._env(attachment))
        self._cache_file(conflist, attachment).unlink(missing_ok=True)

    def status(self, conflist: JsonObject) -> None:
        for plugin in conflist["plugins"]:
            self.invoke(self.request_config(conflist, plugin, {}, None), "STATUS", {})

    def gc(self, conflist: JsonObject, valid: list[Attachment]) -> None:
        """libcni's GC: DEL every cached attachment not valid, then GC each plugin."""
        valid_keys = {(a.container_id, a.ifname) for a in valid}
        prefix = f"{conflist['name']}-"
        for path in sorted(self.cache_dir.glob(f"{prefix}*")):
            container_id, _, ifname = path.name[len(prefix) :].rpartition("-")
            if (container_id, ifname) not in valid_keys:
                self.delete(conflist, Attachment(container_id, "", ifname))
        attachments = [{"containerID": a.container_id, "ifname": a.ifname} for a in valid]
        for plugin in conflist["plugins"]:
            config = self.request_config(
                conflist, plugin, {}, None, {"cni.dev/valid-attachments": attachments}
            )
            self.invoke(config, "GC", {})
