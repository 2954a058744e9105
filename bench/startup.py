"""Start-up benchmark: what the plugin costs per command, against the floor.

Run as root: ``python bench/startup.py [--rounds 30] [--plugin PATH ...]``.

In one run and paired (A, B, A, B, ...), inside a network namespace made for
the run (the "node"), with a second one as the pod:

- A: the plugin's ADD, CHECK and DEL with Debian's real bridge/host-local;
- B: the same delegate executed directly with the configuration the plugin
  rendered (the plugin's record), for the same commands;
- C: the same delegate and configuration under a bare Python parent (the
  floor's interpreter and imports, then spawn and wait): what any plugin
  written in Python costs at least, its own start and the delegate's run as the
  child of a process that has been running for a while;
- the floor: ``python3 -I -c "import returns.result, json"`` started the same
  way, i.e. what any Python process importing our one dependency costs.

The plugin's own overhead per command is the median of the paired
differences A - B; its ratio to the floor's median is the figure the
start-up budget (1.15) is about. A - C is what the plugin adds to a bare
Python parent. Prints a Markdown table and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CNI_DIR = "/usr/lib/cni"
SUBNET_ENV = """\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


SETTLE_MS = 50.0


class Node:
    def __init__(self, work: Path, settle_ms: float = SETTLE_MS) -> None:
        self.settle = settle_ms / 1000
        suffix = os.getpid()
        self.node = f"flcni-bench-{suffix}-n"
        # A pod for each of A, B and C: their commands interleave (A ADD, B ADD,
        # C ADD, A CHECK, ...), so all see the same time between ADD and DEL.
        self.pods = tuple(f"flcni-bench-{suffix}-{side}" for side in "abc")
        self.work = work
        ip("netns", "add", self.node)
        for pod in self.pods:
            ip("netns", "add", pod)
        ip("-n", self.node, "link", "set", "lo", "up")
        (work / "subnet.env").write_text(SUBNET_ENV)

    def close(self) -> None:
        for name in (*self.pods, self.node):
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)

    def timed(
        self, argv: list[str], command: str, stdin: bytes, env: dict[str, str]
    ) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        full = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env, "CNI_COMMAND": command}
        # Every process starts from a settled machine. Without the pause, each one
        # inherits the warmth of the one before: a bridge DEL started right after
        # another process exited ran about 5 ms faster than one started 40 ms into
        # a process's life, so B (started at once) was favoured over A's delegate.
        time.sleep(self.settle)
        started = time.perf_counter()
        done = subprocess.run(
            ["ip", "netns", "exec", self.node, *argv],
            input=stdin,
            env=full,
            capture_output=True,
            check=False,
        )
        elapsed = (time.perf_counter() - started) * 1000
        if done.returncode != 0:
            raise SystemExit(f"bench: {argv[-1]} {command} failed: {done.stdout!r} {done.stderr!r}")
        return elapsed, done


def conf(work: Path, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": "bench",
        "type": "flannel",
        "subnetFile": str(work / "subnet.env"),
        "dataDir": str(work / "flannel"),
        "delegate": {"hairpinMode": True, "isDefaultGateway": True},
        "ipam": {"dataDir": str(work / "host-local")},
    }


FLOOR = "import returns.result, json"
# The delegate (argv[1]) as the child of a bare Python process, with the
# parent's stdin and stdout: the least any plugin written in Python adds.
PARENT = (
    "; import os, sys; pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)"
    "; os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))"
)


def floor_argv(plugin: Path, code: str = FLOOR) -> list[str]:
    """The floor, started the way the plugin starts: its interpreter, its returns."""
    head = plugin.read_bytes()[:200].split(b"\n", 1)[0].decode()
    if head.startswith("#!") and "env" not in head:  # a console script: the venv's python
        return [head[2:].split()[0], "-I", "-c", code]
    code = f"import sys; sys.path.insert(0, {str(plugin)!r}); {code}"
    return [sys_python(), "-I", "-c", code]  # a zipapp: host python3, returns from the file


def sys_python() -> str:
    found = shutil.which("python3", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise SystemExit("bench: no python3 on the host PATH")
    return found


def bench_plugin(node: Node, plugin: Path, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {
        k: [] for k in ("launch", "floor", "VERSION", "ADD", "CHECK", "DEL")
    }
    for way in ("direct", "parent"):
        times.update({f"{way} {k}": [] for k in ("ADD", "CHECK", "DEL")})
    config = conf(node.work)
    bridge = [f"{CNI_DIR}/bridge"]
    parent = [*floor_argv(plugin, FLOOR + PARENT), *bridge]
    for index in range(rounds):
        env_a, env_b, env_c = (
            {
                "CNI_CONTAINERID": f"bench{index}{side}",
                "CNI_NETNS": f"/var/run/netns/{pod}",
                "CNI_IFNAME": "eth0",
                "CNI_PATH": CNI_DIR,
            }
            for side, pod in zip("abc", node.pods, strict=True)
        )
        times["launch"].append(node.timed(["/bin/true"], "VERSION", b"", env_a)[0])
        times["floor"].append(node.timed(floor_argv(plugin), "VERSION", b"", env_a)[0])
        times["VERSION"].append(node.timed([str(plugin)], "VERSION", b"", env_a)[0])
        # ADD: A through the plugin, then B, the delegate directly with the
        # rendering the plugin stored, then C, the same under a bare Python parent.
        elapsed, done = node.timed([str(plugin)], "ADD", json.dumps(config).encode(), env_a)
        times["ADD"].append(elapsed)
        with_prev = json.dumps({**config, "prevResult": json.loads(done.stdout)}).encode()
        record = (node.work / "flannel" / f"bench{index}a:eth0").read_bytes()
        replays = {}
        for way, argv, env in (("direct", bridge, env_b), ("parent", parent, env_c)):
            elapsed, done = node.timed(argv, "ADD", record, env)
            times[f"{way} ADD"].append(elapsed)
            replays[way] = {**json.loads(record), "prevResult": json.loads(done.stdout)}
        times["CHECK"].append(node.timed([str(plugin)], "CHECK", with_prev, env_a)[0])
        for way, argv, env in (("direct", bridge, env_b), ("parent", parent, env_c)):
            # The plugin states route gateways for Debian's bridge CHECK (README); so do B and C.
            prev = json.loads(json.dumps(replays[way]))
            for route in prev["prevResult"].get("routes", []):
                route.setdefault("gw", "10.244.7.1")
            checked = node.timed(argv, "CHECK", json.dumps(prev).encode(), env)
            times[f"{way} CHECK"].append(checked[0])
        times["DEL"].append(node.timed([str(plugin)], "DEL", with_prev, env_a)[0])
        for way, argv, env in (("direct", bridge, env_b), ("parent", parent, env_c)):
            times[f"{way} DEL"].append(
                node.timed(argv, "DEL", json.dumps(replays[way]).encode(), env)[0]
            )
    return times


def paired_median(a: list[float], b: list[float]) -> float:
    return statistics.median(x - y for x, y in zip(a, b, strict=True))


def report(plugin: Path, times: dict[str, list[float]]) -> str:
    # Every process here starts through `ip netns exec`; the floor is the Python
    # part of a start, without that launch cost, so that it compares with the
    # paired differences (which cancel the launch too).
    launch = statistics.median(times["launch"])
    floor = paired_median(times["floor"], times["launch"])
    version = paired_median(times["VERSION"], times["launch"])
    header = (
        "| command | plugin median ms | delegate alone median ms"
        " | plugin's own cost ms (paired median) | / floor"
        " | bare Python parent's cost ms | plugin beyond it ms |"
    )
    floor_row = f"| floor (`python3 -I -c 'import returns.result, json'`) | {floor:.1f} | | {floor:.1f} | 1.00 | | |"  # noqa: E501
    version_row = f"| VERSION | {statistics.median(times['VERSION']):.1f} | | {version:.1f} | {version / floor:.2f} | | |"  # noqa: E501
    lines = [
        f"### {plugin}",
        "",
        header,
        "|---|---|---|---|---|---|---|",
        f"| launch (`ip netns exec node /bin/true`) | {launch:.1f} | | | | | |",
        floor_row,
        version_row,
    ]
    for command in ("ADD", "CHECK", "DEL"):
        direct = times[f"direct {command}"]
        own = paired_median(times[command], direct)
        bare = paired_median(times[f"parent {command}"], direct)
        beyond = paired_median(times[command], times[f"parent {command}"])
        lines.append(
            f"| {command} | {statistics.median(times[command]):.1f} | "
            f"{statistics.median(direct):.1f} | {own:.1f} | {own / floor:.2f} | "
            f"{bare:.1f} | {beyond:.1f} |"
        )
    round_trip = [a + d for a, d in zip(times["ADD"], times["DEL"], strict=True)]
    direct_trip = [a + d for a, d in zip(times["direct ADD"], times["direct DEL"], strict=True)]
    trip_ratio = statistics.median(round_trip) / statistics.median(direct_trip)
    lines.append(
        f"| ADD+DEL round trip | {statistics.median(round_trip):.1f} | "
        f"{statistics.median(direct_trip):.1f} | {paired_median(round_trip, direct_trip):.1f} | "
        f"plugin/direct {trip_ratio:.2f} | | |"
    )
    return "\n".join(lines)


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "?")
    host = subprocess.run([sys_python(), "--version"], capture_output=True, text=True, check=False)
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()} (bench), "
        f"host {host.stdout.strip()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--settle-ms",
        type=float,
        default=SETTLE_MS,
        help="idle time before each timed process (0: none)",
    )
    parser.add_argument(
        "--plugin",
        type=Path,
        action="append",
        help="plugin executable(s) to measure (default: the console script beside this python)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (network namespaces)")
    plugins = args.plugin or [Path(sys.executable).parent / "flannel"]
    print(
        f"machine: {machine()}; {args.rounds} paired rounds per plugin,"
        f" {args.settle_ms:g} ms settle before each process\n"
    )
    for plugin in plugins:
        with tempfile.TemporaryDirectory(prefix="flcni-bench-") as scratch:
            node = Node(Path(scratch), args.settle_ms)
            try:
                times = bench_plugin(node, plugin.resolve(), args.rounds)
            finally:
                node.close()
        print(report(plugin, times), "\n", sep="")


if __name__ == "__main__":
    main()
