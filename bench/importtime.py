"""What each command imports, and what that costs: ``python -X importtime`` per command.

Run: ``python bench/importtime.py [--python PY]`` (no root needed: the commands fail
early on purpose, after their imports, against a dataDir in a temporary directory
holding a record, with a delegate that is not there). Prints, per command, the
modules beyond the floor (``returns.result`` and ``json``) with the import time
each costs itself (its own, without what it imports): the median of ``--runs``
runs, as one run on a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FLOOR = "import returns.result, json"
CONTAINER_ID = "prof"


def imported(python: str, code: str, env: dict[str, str], stdin: bytes) -> dict[str, int]:
    """Module name to its own import time in microseconds."""
    done = subprocess.run(
        [python, "-I", "-X", "importtime", "-c", code],
        input=stdin,
        env=env,
        capture_output=True,
        check=False,
    )
    times: dict[str, int] = {}
    for line in done.stderr.decode().splitlines():  # "import time: own | cumulative | name"
        if line.startswith("import time:") and "|" in line:
            own, _, name = line.removeprefix("import time:").split("|")
            if own.strip().isdigit():
                times[name.strip()] = int(own.strip())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    floor = set(imported(args.python, FLOOR, {}, b""))
    with tempfile.TemporaryDirectory() as scratch:
        subnet = Path(scratch) / "subnet.env"
        subnet.write_text(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\n"
            "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        )
        data = Path(scratch) / "data"
        conf = {
            "cniVersion": "1.0.0",
            "name": "prof",
            "type": "flannel",
            "subnetFile": str(subnet),
            "dataDir": str(data),
            "delegate": {"type": "absent-on-purpose"},
        }
        # DEL and CHECK find a record, as they do after an ADD; its delegate is absent.
        data.mkdir(mode=0o700)
        record = {**conf, "type": "absent-on-purpose", "ipam": {"ranges": []}}
        (data / f"{CONTAINER_ID}:eth0").write_text(json.dumps(record))
        for command in ("VERSION", "ADD", "DEL", "CHECK"):
            env = {
                "CNI_COMMAND": command,
                "CNI_CONTAINERID": CONTAINER_ID,
                "CNI_NETNS": "/var/run/netns/none",
                "CNI_IFNAME": "eth0",
                "CNI_PATH": scratch,
                "PATH": os.environ["PATH"],
            }
            stdin = b"" if command == "VERSION" else json.dumps(conf).encode()
            # The floor first: what follows is what the plugin adds to it.
            code = f"{FLOOR}; from shell.entry import main; main()"
            runs = [imported(args.python, code, env, stdin) for _ in range(args.runs)]
            extra = {
                name: statistics.median(run.get(name, 0) for run in runs)
                for name in runs[0]
                if name not in floor
            }
            print(f"## {command}: {len(extra)} modules beyond the floor")
            for name, micros in sorted(extra.items(), key=lambda kv: -kv[1])[:12]:
                print(f"  {micros / 1000:6.2f} ms  {name}")
            total = sum(extra.values())
            print(f"  total beyond the floor: {total / 1000:.2f} ms (inflated by -X importtime)\n")


if __name__ == "__main__":
    main()
