"""GC campaign: thousands of stale attachments beside live ones, collected in one GC.

The live attachments are real: pods ADDed through the plugin and the real
bridge (a 1.0.0 conflist: Debian's delegates stop at 1.0.0). The stale ones
are what a node holds after its runtime lost track of containers: the
plugin's state record (``<container ID>:eth0``, mode 0600, the bare delegate
configuration; its bytes are a live record's, which do not depend on the
container) and host-local's reservation (a file named after the address
holding ``<container ID>\\r\\n<ifname>``, the format host-local 1.1.1 wrote for
the live pods, checked here against them). Their pods are long gone, so they
have no veth and no chain.

GC then runs as libcni runs it (``conformance.runtime.Runtime.gc``, the same
conflist at 1.1.0, the live attachments valid). The plugin's GC invocation is
measured: wall time, peak resident memory of the plugin process (its VmHWM,
sampled while it runs) and of any process it ran (``wait4``'s ``ru_maxrss``,
the largest of the plugin, ``setpriv``, ``bridge`` and ``host-local``), and CPU
time. Afterwards exactly the stale records and reservations must be gone, and
every live pod must keep its record, reservation and address, pass CHECK and
answer ping. A second GC (nothing stale) is timed too, then the live pods are
deleted and the node must be empty.

    sudo .venv/bin/python -m reliability.campaign_gc --stale 10000 --live 100
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Final

from conformance.conftest import Node
from conformance.kernel import Namespace, run_id
from conformance.runtime import Attachment, JsonObject, Runtime
from core.records import NETNS_ATTRIBUTE, record_name
from reliability.load import (
    FLANNEL_NETWORK,
    NETWORK_NAME,
    address_of,
    find_leaks,
    flannel_conflist,
    load_node,
    machine_note,
    pod_pool,
    requirements_problem,
    work_root,
)

GC_VERSION: Final = "1.1.0"
IFNAME: Final = "eth0"
# Stale addresses start here, well away from the live ones host-local hands out first.
STALE_FIRST: Final = IPv4Address("10.244.64.0")
SAMPLE_SECONDS: Final = 0.01


# -- measuring one plugin process ------------------------------------------------------------

# GNU time reports its child's ru_maxrss: the largest resident set of any process
# in the plugin's tree (the plugin, setpriv, bridge, host-local). It is started
# from here, but it forks its child itself, so this process's memory (which a
# child of ours inherits as its high-water mark at exec) does not count.
GNU_TIME: Final = "/usr/bin/time"


@dataclass(frozen=True)
class ProcessFigures:
    """One measured plugin execution."""

    command: str
    wall_s: float
    peak_rss_kb: int  # VmHWM of the plugin process itself (sampled while it runs)
    tree_peak_rss_kb: int | None  # GNU time's %M: the largest process of its tree
    cpu_s: float  # user + system of the plugin and every process it waited for
    returncode: int


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _child_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            found = children.read().split()
    except OSError:
        return None
    return int(found[0]) if found else None


class _HighWater:
    """Samples the VmHWM (a high-water mark: it only grows) of the plugin process.

    The plugin is the process ``ip netns exec`` becomes (it execs), which is
    the spawned process itself or, under GNU time, its only child.
    """

    def __init__(self, spawned: int, under_time: bool) -> None:
        self._spawned = spawned
        self._under_time = under_time
        self.peak_kb = 0
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        target: int | None = None if self._under_time else self._spawned
        while self._running.is_set():
            if target is None:
                target = _child_of(self._spawned)
            if target is not None:
                self.peak_kb = max(self.peak_kb, _vm_hwm_kb(target))
            time.sleep(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._running.clear()
        self._thread.join()


@dataclass
class MeasuredRuntime(Runtime):
    """The conformance runtime; its GC executions are measured (nothing else changes)."""

    measured: list[ProcessFigures] = field(default_factory=list)

    def exec_plugin(
        self, config: JsonObject, command: str, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        if command != "GC":
            return super().exec_plugin(config, command, env)
        plugin = str(config["type"])
        self.calls.append((plugin, command))
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_PATH": ":".join(self.cni_path),
            **env,
        }
        plugin_argv = ["ip", "netns", "exec", self.node_netns, self.find(plugin)]
        under_time = os.access(GNU_TIME, os.X_OK)
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
            tempfile.NamedTemporaryFile(mode="r") as stats,
        ):
            argv = [GNU_TIME, "-f", "%M", "-o", stats.name, *plugin_argv]
            if not under_time:
                argv = plugin_argv
            stdin.write(json.dumps(config).encode())
            stdin.seek(0)
            started = time.perf_counter()
            pid = os.posix_spawnp(
                argv[0],
                argv,
                full_env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, stdin.fileno(), 0),
                    (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                    (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
                ],
            )
            high_water = _HighWater(pid, under_time)
            # Wait without reaping, so that the sampler never reads a reused pid.
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            wall = time.perf_counter() - started
            high_water.stop()
            _, status, usage = os.wait4(pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
            tree_peak = int(stats.read().split()[-1]) if under_time else None
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        self.measured.append(
            ProcessFigures(
                command=command,
                wall_s=wall,
                peak_rss_kb=high_water.peak_kb,
                tree_peak_rss_kb=tree_peak,
                cpu_s=usage.ru_utime + usage.ru_stime,
                returncode=returncode,
            )
        )
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)


def measured_node(node: Node) -> MeasuredRuntime:
    """Swap the node's runtime for the measured one (same plugins, cache and namespace)."""
    runtime = MeasuredRuntime(
        cni_path=node.runtime.cni_path,
        cache_dir=node.runtime.cache_dir,
        node_netns=node.runtime.node_netns,
    )
    node.runtime = runtime
    return runtime


# -- building the node's state --------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    pod: Namespace
    attachment: Attachment
    address: str

    @property
    def record(self) -> str:
        return record_name(self.attachment.container_id, self.attachment.ifname)


def add_live(node: Node, pods: Sequence[Namespace], workers: int = 4) -> list[Live]:
    conflist = flannel_conflist(node)
    attachments = [node.attachment(pod, IFNAME) for pod in pods]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda a: node.runtime.add(conflist, a), attachments))
    return [
        Live(pod, attachment, address_of(result))
        for pod, attachment, result in zip(pods, attachments, results, strict=True)
    ]


def reservation_dir(node: Node) -> Path:
    return node.ipam_dir / NETWORK_NAME


def live_templates(node: Node, live: Sequence[Live]) -> tuple[bytes, int]:
    """A record's bytes as the plugin stores them, and host-local's reservation file mode.

    Checked against every live attachment: the records are byte-identical
    (nothing in them depends on the container), and each reservation holds
    ``<container ID>\\r\\n<ifname>``. If a delegate upgrade changed either
    format, the stale state built from them would not be honest: fail.
    """
    records = {(node.data_dir / one.record).read_bytes() for one in live}
    if len(records) != 1:
        raise AssertionError(f"live records differ from each other: {len(records)} variants")
    modes = set()
    for one in live:
        path = reservation_dir(node) / one.address
        expected = f"{one.attachment.container_id}\r\n{one.attachment.ifname}".encode()
        if path.read_bytes() != expected:
            raise AssertionError(f"host-local's format changed: {path} holds {path.read_bytes()!r}")
        modes.add(path.stat().st_mode & 0o777)
    (record,) = records
    (mode,) = modes
    return record, mode


def stale_addresses(count: int, taken: set[str]) -> Iterator[str]:
    """``count`` addresses of the /16 from STALE_FIRST on, none of them live."""
    made = 0
    for host in FLANNEL_NETWORK.hosts():
        if host < STALE_FIRST or str(host) in taken:
            continue
        if made == count:
            return
        made += 1
        yield str(host)
    raise ValueError(f"{FLANNEL_NETWORK} has no room for {count} stale addresses")


@dataclass(frozen=True)
class Stale:
    container_id: str
    address: str

    @property
    def record(self) -> str:
        return record_name(self.container_id, IFNAME)


def write_stale(node: Node, live: Sequence[Live], count: int) -> list[Stale]:
    """Records and reservations of ``count`` attachments whose pods are gone."""
    record_bytes, reservation_mode = live_templates(node, live)
    gone_netns = f"/var/run/netns/flcni-{run_id()}-gone"
    stale = [
        Stale(f"stale{run_id()}x{index:05d}", address)
        for index, address in enumerate(stale_addresses(count, {one.address for one in live}))
    ]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for one in stale:
        fd = os.open(node.data_dir / one.record, flags, 0o600)
        try:
            os.write(fd, record_bytes)
            with contextlib.suppress(OSError):  # as the plugin: no xattrs, no netns note
                os.setxattr(fd, NETNS_ATTRIBUTE, gone_netns.encode())
        finally:
            os.close(fd)
        fd = os.open(reservation_dir(node) / one.address, flags, reservation_mode)
        try:
            os.write(fd, f"{one.container_id}\r\n{IFNAME}".encode())
        finally:
            os.close(fd)
    return stale


# -- the campaign ---------------------------------------------------------------------------------


@dataclass
class GcOutcome:
    stale: int
    live: int
    build_s: float = 0.0
    gc: ProcessFigures | None = None
    runtime_gc_s: float = 0.0
    second_gc: ProcessFigures | None = None
    verify_s: float = 0.0
    stale_records_left: int = -1
    stale_reservations_left: int = -1
    live_records_kept: int = 0
    live_reservations_kept: int = 0
    live_checked: int = 0
    live_pinged: int = 0
    problems: list[str] = field(default_factory=list)
    leaks_after_cleanup: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and self.stale_records_left == 0
            and self.stale_reservations_left == 0
            and self.live_records_kept == self.live
            and self.live_reservations_kept == self.live
            and self.live_checked == self.live
            and self.live_pinged == self.live
            and self.leaks_after_cleanup == "none"
        )


def _verify_live(node: Node, live: Sequence[Live], outcome: GcOutcome) -> None:
    conflist = flannel_conflist(node)
    records = set(node.records())
    reservations = set(node.reservations(NETWORK_NAME))
    outcome.live_records_kept = sum(one.record in records for one in live)
    outcome.live_reservations_kept = sum(one.address in reservations for one in live)
    for one in live:
        found = [str(a.ip) for a in one.pod.global_addresses(IFNAME)]
        if found != [one.address]:
            outcome.problems.append(f"{one.pod.name} has {found}, not {one.address}")
            continue
        try:
            node.runtime.check(conflist, one.attachment)
            outcome.live_checked += 1
        except Exception as exc:
            outcome.problems.append(f"CHECK of live {one.attachment.container_id}: {exc}")
        if node.ns.ping(one.address, attempts=3):
            outcome.live_pinged += 1
        else:
            outcome.problems.append(f"live {one.address} does not answer ping from the node")


def _collect(
    node: Node, runtime: MeasuredRuntime, live: Sequence[Live], outcome: GcOutcome
) -> None:
    started = time.perf_counter()
    try:
        runtime.gc(flannel_conflist(node, GC_VERSION), [one.attachment for one in live])
    except Exception as exc:
        outcome.problems.append(f"GC failed: {exc}"[:2000])
    outcome.runtime_gc_s = time.perf_counter() - started
    outcome.gc = runtime.measured[-1] if runtime.measured else None


def _verify(node: Node, live: Sequence[Live], stale: Sequence[Stale], outcome: GcOutcome) -> None:
    """Exactly the stale state is gone; the live pods keep theirs and still work."""
    started = time.perf_counter()
    records = set(node.records())
    reservations = set(node.reservations(NETWORK_NAME))
    outcome.stale_records_left = sum(s.record in records for s in stale)
    outcome.stale_reservations_left = sum(s.address in reservations for s in stale)
    expected_records = {o.record for o in live}
    if records != expected_records:
        outcome.problems.append(
            f"records after GC: {len(records - expected_records)} unexpected,"
            f" {len(expected_records - records)} live missing"
        )
    if reservations != {o.address for o in live}:
        outcome.problems.append("reservations after GC are not exactly the live addresses")
    _verify_live(node, live, outcome)
    outcome.verify_s = time.perf_counter() - started


def _again_and_clean_up(
    node: Node, runtime: MeasuredRuntime, live: Sequence[Live], outcome: GcOutcome
) -> None:
    """A second GC finds nothing stale; then the live pods go and the node must be empty."""
    before = set(node.records())
    measured = len(runtime.measured)
    try:
        runtime.gc(flannel_conflist(node, GC_VERSION), [one.attachment for one in live])
        if set(node.records()) != before:
            outcome.problems.append("the second GC changed the records")
    except Exception as exc:
        outcome.problems.append(f"second GC failed: {exc}"[:2000])
    if len(runtime.measured) > measured:
        outcome.second_gc = runtime.measured[-1]
    conflist = flannel_conflist(node)
    for one in live:
        try:
            node.runtime.delete(conflist, one.attachment)
        except Exception as exc:
            outcome.problems.append(f"DEL of live {one.attachment.container_id}: {exc}")
    leaks = find_leaks(node)
    outcome.leaks_after_cleanup = leaks.summary()
    if not leaks.none:
        outcome.problems.append(f"left after the live pods' DEL: {leaks.details()}")


def run_gc_campaign(stale_count: int, live_count: int, root: Path, say: bool = False) -> GcOutcome:
    """Build, collect, verify, clean up; every namespace goes even on failure."""
    outcome = GcOutcome(stale_count, live_count)

    def note(message: str) -> None:
        if say:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    with pod_pool("gp", live_count) as pods, load_node("gc", root / "gc") as node:
        runtime = measured_node(node)
        started = time.perf_counter()
        live = add_live(node, pods)
        note(f"{live_count} live pods added")
        stale = write_stale(node, live, stale_count)
        outcome.build_s = time.perf_counter() - started
        if sorted(node.records()) != sorted([o.record for o in live] + [s.record for s in stale]):
            outcome.problems.append("the records before GC are not the live and stale ones")
        note(f"{stale_count} stale attachments written; GC starts")
        _collect(node, runtime, live, outcome)
        note("GC done; verifying")
        _verify(node, live, stale, outcome)
        _again_and_clean_up(node, runtime, live, outcome)
    return outcome


def _mib(kb: int | None) -> str:
    return "n/a (no GNU time)" if kb is None else f"{kb / 1024:6.1f} MiB"


def report(outcome: GcOutcome) -> str:
    lines = [f"GC at scale: {outcome.stale} stale + {outcome.live} live attachments"]

    def figures(label: str, fig: ProcessFigures | None) -> None:
        if fig is None:
            lines.append(f"{label:<34} not measured (GC did not run)")
            return
        lines.append(
            f"{label:<34} wall {fig.wall_s:8.2f} s | plugin peak RSS"
            f" {fig.peak_rss_kb / 1024:6.1f} MiB | largest process in its tree"
            f" {_mib(fig.tree_peak_rss_kb)} | CPU {fig.cpu_s:7.2f} s"
            f" | exit {fig.returncode}"
        )

    figures("flannel GC (stale present)", outcome.gc)
    if outcome.gc is not None and outcome.stale:
        lines.append(
            f"{'':<34} {outcome.gc.wall_s / outcome.stale * 1000:.2f} ms per stale attachment"
        )
    figures("flannel GC again (nothing stale)", outcome.second_gc)
    lines += [
        f"{'runtime GC call, whole':<34} {outcome.runtime_gc_s:.2f} s",
        f"{'building the state':<34} {outcome.build_s:.2f} s",
        f"{'stale records left':<34} {outcome.stale_records_left} of {outcome.stale}",
        f"{'stale reservations left':<34} {outcome.stale_reservations_left} of {outcome.stale}",
        f"{'live records kept':<34} {outcome.live_records_kept} of {outcome.live}",
        f"{'live reservations kept':<34} {outcome.live_reservations_kept} of {outcome.live}",
        f"{'live pods passing CHECK':<34} {outcome.live_checked} of {outcome.live}",
        f"{'live pods answering ping':<34} {outcome.live_pinged} of {outcome.live}",
        f"{'left after the live pods DEL':<34} {outcome.leaks_after_cleanup}",
    ]
    if outcome.problems:
        lines += ["PROBLEMS", *outcome.problems[:50]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stale", type=int, default=10000, help="stale attachments")
    parser.add_argument("--live", type=int, default=100, help="live pods (real ADDs)")
    parser.add_argument("--workdir", default=None, help="where node files go (default: /tmp)")
    args = parser.parse_args(argv)
    if args.live < 1:
        parser.error("--live must be at least 1: the stale state is modelled on a live one")
    problem = requirements_problem()
    if problem is not None:
        print(f"campaign_gc: {problem}", file=sys.stderr)
        return 2
    root = work_root(args.workdir, "gc")
    print(f"[{time.strftime('%H:%M:%S')}] campaign_gc: {machine_note()}", file=sys.stderr)
    outcome = run_gc_campaign(args.stale, args.live, root, say=True)
    print(f"{machine_note()}\n")
    print(report(outcome))
    if outcome.ok:
        shutil.rmtree(root, ignore_errors=True)
        return 0
    print(f"node files kept for inspection in {root}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
