#!/usr/bin/env python3
"""A recording stand-in for the delegate plugins (bridge, ipvlan, host-local, ...).

The tests install it into a temporary CNI_PATH under several names, each a
small wrapper that runs ``<python> standin_plugin.py <name>``. Every
invocation appends one JSON line to the file named by ``$STANDIN_LOG``: the
plugin name, CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS, CNI_ARGS,
CNI_PATH, every ``CNI_*``/``STANDIN_*`` variable, and stdin (raw, and decoded
when it is JSON).

How it answers is steered by the JSON file named by ``$STANDIN_SCRIPT``::

    {"ADD": step, "DEL": [step, step], "ipvlan/CHECK": step, ...}

A key ``"<name>/<command>"`` applies to one plugin name and wins over the
bare ``"<command>"``. A list of steps is consumed in order, one per
invocation of that command by that plugin name (counted from the log); the
last step repeats once the list runs out. A step is an object, every key
optional:

- ``exit``: exit status (default 0, or 1 when ``error`` is given)
- ``stdout``: a string printed as is, or any other JSON value printed as JSON
- ``error``: ``{"code", "msg", "details"}``, printed as a CNI error object
- ``stderr``: a string written to stderr
- ``supportedVersions``: the list VERSION answers with
- ``signal``: the stand-in kills itself with this signal

Without a step, ADD prints a result of the config's cniVersion, VERSION
lists every version, and every other command succeeds silently.

It uses the standard library only, so it runs with any Python 3. The tests'
in-process runner calls :func:`invoke` directly, so both paths behave alike.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LOG_VAR = "STANDIN_LOG"
SCRIPT_VAR = "STANDIN_SCRIPT"
ALL_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@dataclass(frozen=True)
class Reply:
    """What one invocation answers; ``signal`` != 0 means it dies by that signal."""

    exit: int
    stdout: bytes
    stderr: bytes
    signal: int = 0


def default_result(config: Mapping[str, Any]) -> dict[str, Any]:
    """A plausible ADD result in the layout of the config's cniVersion."""
    version = config.get("cniVersion", "0.1.0")
    if version in ("0.1.0", "0.2.0"):
        return {
            "cniVersion": version,
            "ip4": {"ip": "10.244.7.2/24", "gateway": "10.244.7.1"},
            "dns": {},
        }
    return {
        "cniVersion": version,
        "interfaces": [{"name": "cni0", "mac": "02:00:00:00:00:01"}],
        "ips": [{"address": "10.244.7.2/24", "gateway": "10.244.7.1", "interface": 0}],
        "dns": {},
    }


def decode(stdin: bytes) -> Any:
    """stdin as JSON, or None when it is not JSON."""
    try:
        return json.loads(stdin.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def load_script(path: str) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            script = json.load(file)
    except FileNotFoundError:
        return {}
    if not isinstance(script, dict):
        raise SystemExit(f"stand-in: script {path} is not a JSON object")
    return script


def read_log(path: str) -> list[dict[str, Any]]:
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as file:
            return [json.loads(line) for line in file if line.strip()]
    except FileNotFoundError:
        return []


def choose_step(script: Mapping[str, Any], name: str, command: str, index: int) -> dict[str, Any]:
    """The step for the ``index``-th (from 0) ``command`` of plugin ``name``."""
    steps = script.get(f"{name}/{command}", script.get(command))
    if steps is None:
        return {}
    if isinstance(steps, list):
        if not steps:
            return {}
        steps = steps[min(index, len(steps) - 1)]
    if not isinstance(steps, dict):
        raise SystemExit(f"stand-in: step for {name}/{command} is not an object")
    return steps


def respond(command: str, config: Any, step: Mapping[str, Any]) -> Reply:
    """The reply a step asks for, with the defaults described in the module doc."""
    stderr = str(step.get("stderr", "")).encode("utf-8")
    if "error" in step:
        error = {"cniVersion": _version(config), **step["error"]}
        stdout = json.dumps(error).encode("utf-8")
        return Reply(int(step.get("exit", 1)), stdout, stderr, int(step.get("signal", 0)))
    if "stdout" in step:
        text = step["stdout"]
        stdout = (text if isinstance(text, str) else json.dumps(text)).encode("utf-8")
    elif command == "ADD":
        stdout = json.dumps(default_result(config if isinstance(config, dict) else {})).encode()
    elif command == "VERSION":
        versions = step.get("supportedVersions", ALL_VERSIONS)
        answer = {"cniVersion": _version(config), "supportedVersions": versions}
        stdout = json.dumps(answer).encode("utf-8")
    else:
        stdout = b""
    return Reply(int(step.get("exit", 0)), stdout, stderr, int(step.get("signal", 0)))


def _version(config: Any) -> str:
    if isinstance(config, dict) and isinstance(config.get("cniVersion"), str):
        return str(config["cniVersion"])
    return ALL_VERSIONS[-1]


def invoke(name: str, env: Mapping[str, str], stdin: bytes) -> Reply:
    """Record one invocation of plugin ``name`` and answer it as the script says."""
    log = env.get(LOG_VAR, "")
    command = env.get("CNI_COMMAND", "")
    earlier = sum(
        1 for entry in read_log(log) if entry["plugin"] == name and entry["command"] == command
    )
    config = decode(stdin)
    entry = {
        "plugin": name,
        "command": command,
        "containerid": env.get("CNI_CONTAINERID"),
        "ifname": env.get("CNI_IFNAME"),
        "netns": env.get("CNI_NETNS"),
        "args": env.get("CNI_ARGS"),
        "path": env.get("CNI_PATH"),
        "env": {k: v for k, v in env.items() if k.startswith(("CNI_", "STANDIN_"))},
        "stdin": stdin.decode("utf-8", "replace"),
        "config": config,
    }
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry, sort_keys=True) + "\n")
    step = choose_step(load_script(env.get(SCRIPT_VAR, "")), name, command, earlier)
    return respond(command, config, step)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else os.path.basename(sys.argv[0])
    reply = invoke(name, os.environ, sys.stdin.buffer.read())
    sys.stdout.buffer.write(reply.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(reply.stderr)
    sys.stderr.flush()
    if reply.signal:
        os.kill(os.getpid(), signal.Signals(reply.signal))
    sys.exit(reply.exit)


if __name__ == "__main__":
    main()
