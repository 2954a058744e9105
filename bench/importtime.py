"""What each command imports, and what that costs: ``python -X importtime`` per command.

Run: ``python bench/importtime.py [--python PY]`` (no root needed: the commands fail
early on purpose, after their imports, against a dataDir in a temporary directory).
Prints, per command, the modules beyond the floor (``returns.result`` and ``json``)
with their cumulative import time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FLOOR = "import returns.result, json"


def imported(python: str, code: str, env: dict[str, str], stdin: bytes) -> dict[str, int]:
    done = subprocess.run(
        [python, "-I", "-X", "importtime", "-c", code],
        input=stdin,
        env=env,
        capture_output=True,
        check=False,
    )
    times: dict[str, int] = {}
    for line in done.stderr.decode().splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit():
                times[name.strip()] = int(cumulative.strip())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    floor = set(imported(args.python, FLOOR, {}, b""))
    with tempfile.TemporaryDirectory() as scratch:
        subnet = Path(scratch) / "subnet.env"
        subnet.write_text(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n"
            "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        )
        conf = {
            "cniVersion": "1.0.0",
            "name": "prof",
            "type": "flannel",
            "subnetFile": str(subnet),
            "dataDir": f"{scratch}/data",
            "delegate": {"type": "absent-on-purpose"},
        }
        for command in ("VERSION", "ADD", "DEL", "CHECK"):
            env = {
                "CNI_COMMAND": command,
                "CNI_CONTAINERID": "prof",
                "CNI_NETNS": "/var/run/netns/none",
                "CNI_IFNAME": "eth0",
                "CNI_PATH": scratch,
            }
            stdin = b"" if command == "VERSION" else json.dumps(conf).encode()
            # The floor first, so that shell.main's cumulative time is what it adds.
            code = f"{FLOOR}; from shell.main import main; main()"
            times = imported(args.python, code, {**env, "PATH": os.environ["PATH"]}, stdin)
            extra = {k: v for k, v in times.items() if k not in floor}
            lazily = extra.get("shell.commands", 0)  # imported inside shell.main.run
            print(f"## {command}: {len(extra)} modules beyond the floor")
            for name, micros in sorted(extra.items(), key=lambda kv: -kv[1])[:12]:
                print(f"  {micros / 1000:6.2f} ms  {name}")
            total = extra.get("shell.main", 0) + lazily
            print(f"  total beyond the floor: {total / 1000:.2f} ms (inflated by -X importtime)\n")


if __name__ == "__main__":
    main()
