"""Load on the real bridge: pods driven through the plugin or straight to the delegate.

Shared by ``campaign_load`` (burst and soak), ``campaign_gc`` and their bounded
tests. Everything runs the way the conformance suite runs it: a libcni-style
runtime (``conformance.runtime.Runtime``) executes the plugins inside a network
namespace standing in for the node, pods are namespaces of their own, Debian's
``bridge`` and ``host-local`` (1.1.1) do the networking.

Two modes run the same load with the same delegate configuration:

- ``flannel``: the conflist holds the flannel plugin; it renders, stores a
  record and executes ``bridge``.
- ``direct``: the conflist holds the configuration flannel renders for that
  node (``core.render.render_delegate``, the function ADD itself calls), so
  the runtime executes ``bridge`` itself. CHECK hands it the cached result with
  the route gateways written in, exactly what the plugin hands it
  (``core.check_routes``, containernetworking/plugins#886), so both modes make
  the same delegate calls and the difference is the plugin's own cost.

The node's lease is a /16 (``10.244.0.1/16`` in ``10.244.0.0/16``) so that
thousands of addresses are distinct, and by default flanneld does not
masquerade (``FLANNEL_IPMASQ=false``), so the bridge does: every ADD creates a
``CNI-<hash>`` nat chain and every DEL must remove it, which the leak check
can see.
"""

from __future__ import annotations

import json
import math
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_interface
from pathlib import Path
from typing import Final, Literal, TypeVar

import pytest
from returns.result import Failure, Success

from conformance.conftest import REFERENCE_PLUGINS, REFERENCE_PLUGINS_DIR, Node, _root_snapshot
from conformance.kernel import Namespace, NamespaceFactory, namespaces, our_namespaces
from conformance.runtime import Attachment, JsonObject, Runtime
from core.check_routes import with_route_gateways
from core.jsonvalue import encode
from core.netconf import parse_netconf
from core.render import render_delegate
from shell.lease import read_lease

T = TypeVar("T")
R = TypeVar("R")
Mode = Literal["flannel", "direct"]
MODES: Final[tuple[Mode, ...]] = ("flannel", "direct")

NETWORK_NAME: Final = "cbr0"
# Debian's delegates (1.1.1) speak at most 1.0.0; CHECK needs 0.4.0 or later.
LOAD_VERSION: Final = "1.0.0"
FLANNEL_NETWORK: Final = IPv4Network("10.244.0.0/16")
GATEWAY: Final = "10.244.0.1"


def subnet_env(flanneld_masquerades: bool = False) -> str:
    """A /16 lease: room for 65,000 addresses, all inside 10.244.0.0/16."""
    return (
        f"FLANNEL_NETWORK={FLANNEL_NETWORK}\n"
        f"FLANNEL_SUBNET={GATEWAY}/16\n"
        "FLANNEL_MTU=1450\n"
        f"FLANNEL_IPMASQ={'true' if flanneld_masquerades else 'false'}\n"
    )


def requirements_problem() -> str | None:
    """Why the load cannot run here, or None (scripts say it; tests fail with it)."""
    if os.geteuid() != 0:
        return "must run as root (network namespaces)"
    missing = [p for p in REFERENCE_PLUGINS if not (REFERENCE_PLUGINS_DIR / p).is_file()]
    if missing:
        return f"reference plugins missing from {REFERENCE_PLUGINS_DIR}: {missing}"
    return None


# -- configurations ---------------------------------------------------------------------------


def flannel_conflist(node: Node, version: str = LOAD_VERSION) -> JsonObject:
    """Flannel alone (portmap 1.1.1 fails CHECK on IPv4-only networks, plugins#819)."""
    return node.conflist(
        {
            "name": NETWORK_NAME,
            "cniVersion": version,
            "plugins": [{"type": "flannel", "delegate": {"hairpinMode": True}}],
        }
    )


def rendered_delegate(conflist: JsonObject) -> JsonObject:
    """What flannel's ADD hands its delegate for ``conflist`` on this node.

    The flannel entry is turned into the request libcni would send, then
    parsed and rendered by the plugin's own core functions.
    """
    (plugin,) = conflist["plugins"]
    request = Runtime.request_config(conflist, plugin, {}, None)
    match parse_netconf(encode(request), "ADD"):
        case Failure(error):
            raise ValueError(f"flannel refuses the load configuration: {error.msg}")
        case Success(conf):
            match read_lease(conf.subnet_file):
                case Failure(error):
                    raise ValueError(f"the load's subnet.env is unusable: {error.msg}")
                case Success(lease):
                    return render_delegate(conf, lease)
    raise AssertionError("unreachable")


def direct_conflist(flannel: JsonObject) -> JsonObject:
    """The same network with the rendered delegate configuration as its only plugin."""
    return {
        "name": flannel["name"],
        "cniVersion": flannel["cniVersion"],
        "plugins": [rendered_delegate(flannel)],
    }


# -- the driver -------------------------------------------------------------------------------


def _env(attachment: Attachment) -> dict[str, str]:
    return {
        "CNI_CONTAINERID": attachment.container_id,
        "CNI_NETNS": attachment.netns,
        "CNI_IFNAME": attachment.ifname,
    }


class Driver:
    """One mode's operations on one node, each timed (milliseconds, wall clock)."""

    def __init__(self, node: Node, mode: Mode) -> None:
        self.node = node
        self.mode = mode
        flannel = flannel_conflist(node)
        self.conflist = flannel if mode == "flannel" else direct_conflist(flannel)

    @property
    def runtime(self) -> Runtime:
        return self.node.runtime

    def add(self, attachment: Attachment) -> tuple[float, JsonObject]:
        started = time.perf_counter()
        result = self.runtime.add(self.conflist, attachment)
        return (time.perf_counter() - started) * 1000, result

    def check(self, attachment: Attachment) -> float:
        started = time.perf_counter()
        if self.mode == "flannel":
            self.runtime.check(self.conflist, attachment)
        else:
            prev = self.runtime.cached_result(self.conflist, attachment)
            if prev is None:
                raise AssertionError("CHECK needs a cached ADD result")
            for plugin in self.conflist["plugins"]:
                config = Runtime.request_config(
                    self.conflist, plugin, attachment.capability_args, with_route_gateways(prev)
                )
                self.runtime.invoke(config, "CHECK", _env(attachment))
        return (time.perf_counter() - started) * 1000

    def delete(self, attachment: Attachment) -> float:
        started = time.perf_counter()
        self.runtime.delete(self.conflist, attachment)
        return (time.perf_counter() - started) * 1000


def address_of(result: JsonObject) -> str:
    """The IPv4 address (without prefix) an ADD result gives the pod."""
    return str(ip_interface(result["ips"][0]["address"]).ip)


# -- leaks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaks:
    """What is left on the node that an attachment made."""

    records: tuple[str, ...] = ()  # files in dataDir, temporary ones included
    reservations: tuple[str, ...] = ()  # host-local's address files
    veths: tuple[str, ...] = ()  # in the node namespace
    chains: tuple[str, ...] = ()  # iptables/ip6tables chains named CNI-*, any table

    @property
    def none(self) -> bool:
        return not (self.records or self.reservations or self.veths or self.chains)

    def summary(self) -> str:
        if self.none:
            return "none"
        parts = [
            f"{label} {len(items)}"
            for label, items in (
                ("records", self.records),
                ("reservations", self.reservations),
                ("veths", self.veths),
                ("chains", self.chains),
            )
            if items
        ]
        return ", ".join(parts)

    def details(self) -> str:
        return (
            f"records={list(self.records)[:10]} reservations={list(self.reservations)[:10]}"
            f" veths={list(self.veths)[:10]} chains={list(self.chains)[:10]}"
        )


def cni_chains(ns: Namespace) -> tuple[str, ...]:
    """The CNI-* chains in every iptables and ip6tables table of ``ns``."""
    found: set[str] = set()
    for tool in ("iptables-save", "ip6tables-save"):
        saved = ns.sh(tool, check=False).stdout
        for line in saved.splitlines():
            if line.startswith(":CNI-"):
                found.add(line[1:].split()[0])
    return tuple(sorted(found))


def find_leaks(node: Node) -> Leaks:
    return Leaks(
        records=tuple(node.records()),
        reservations=tuple(node.reservations(NETWORK_NAME)),
        veths=tuple(node.veths()),
        chains=cni_chains(node.ns),
    )


# -- figures ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Phase:
    """One kind of operation in one stage: per-operation latencies and the stage's wall time."""

    mode: str
    name: str
    latencies_ms: tuple[float, ...]
    wall_s: float
    # CPU (user + system) of every process the operations ran: ``ip netns exec``,
    # the plugin, setpriv, bridge, host-local, iptables.
    cpu_s: float = math.nan

    @property
    def ops(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.ops / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def cpu_ms_per_op(self) -> float:
        return self.cpu_s * 1000 / self.ops if self.ops else math.nan

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)


@dataclass
class StageOutcome:
    """A burst or a soak in one mode: figures, addresses, problems, what was left."""

    mode: str
    stage: str
    phases: list[Phase] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # operations that failed
    problems: list[str] = field(default_factory=list)  # state that was wrong along the way
    leaks: Leaks = field(default_factory=Leaks)

    @property
    def unique_addresses(self) -> int:
        return len(set(self.addresses))

    @property
    def ok(self) -> bool:
        return (
            not self.failures
            and not self.problems
            and self.leaks.none
            and self.unique_addresses == len(self.addresses)
        )


def children_cpu_s() -> float:
    """CPU time of every child process this process waited for, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- concurrency --------------------------------------------------------------------------------


def run_together(
    operation: Callable[[T], R], items: Sequence[T]
) -> tuple[list[R | BaseException], float]:
    """Start ``operation`` on every item at the same instant, one thread each.

    Returns each item's outcome (its value or the exception it raised) and the
    wall time from the start to the last completion.
    """
    outcomes: list[R | BaseException] = [RuntimeError("never ran")] * len(items)
    barrier = threading.Barrier(len(items) + 1)

    def work(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = operation(items[index])
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(items))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return outcomes, time.perf_counter() - started


# -- the two stages -----------------------------------------------------------------------------


def _check_attached(
    driver: Driver, attachments: Sequence[Attachment], addresses: Sequence[str]
) -> list[str]:
    """What is wrong with the node while the attachments are up (kernel and files)."""
    node = driver.node
    problems = []
    if len(set(addresses)) != len(addresses):
        duplicated = sorted({a for a in addresses if addresses.count(a) > 1})
        problems.append(f"addresses handed out twice: {duplicated}")
    outside = [a for a in addresses if ip_interface(a).ip not in FLANNEL_NETWORK]
    if outside:
        problems.append(f"addresses outside {FLANNEL_NETWORK}: {outside}")
    if sorted(node.reservations(NETWORK_NAME)) != sorted(addresses):
        problems.append("host-local's reservations are not exactly the addresses handed out")
    expected = (
        sorted(f"{a.container_id}:{a.ifname}" for a in attachments)
        if driver.mode == "flannel"
        else []
    )
    if node.records() != expected:
        problems.append(f"state records are not one per attachment: {len(node.records())}")
    if len(node.veths()) != len(attachments):
        problems.append(f"{len(node.veths())} veths for {len(attachments)} attachments")
    return problems


def _check_pods(pods: Sequence[Namespace], addresses: Sequence[str]) -> list[str]:
    problems = []
    for pod, address in zip(pods, addresses, strict=True):
        found = [str(a.ip) for a in pod.global_addresses("eth0")]
        if found != [address]:
            problems.append(f"{pod.name} eth0 has {found}, its ADD said {address}")
    return problems


def burst(driver: Driver, pods: Sequence[Namespace], verify_pods: bool = True) -> StageOutcome:
    """All pods ADDed at once, checked, then all DELeted at once; then the leak check."""
    outcome = StageOutcome(driver.mode, "burst")
    attachments = [driver.node.attachment(pod) for pod in pods]
    cpu = children_cpu_s()
    added, wall = run_together(driver.add, attachments)
    cpu = children_cpu_s() - cpu
    results = [a for a in added if not isinstance(a, BaseException)]
    outcome.failures += [f"ADD: {a}" for a in added if isinstance(a, BaseException)]
    latencies = tuple(ms for ms, _ in results)
    outcome.phases.append(Phase(driver.mode, "burst ADD", latencies, wall, cpu))
    outcome.addresses = [address_of(result) for _, result in results]
    if not outcome.failures:
        outcome.problems += _check_attached(driver, attachments, outcome.addresses)
        if verify_pods:
            outcome.problems += _check_pods(pods, outcome.addresses)
    cpu = children_cpu_s()
    deleted, wall = run_together(driver.delete, attachments)
    cpu = children_cpu_s() - cpu
    outcome.failures += [f"DEL: {d}" for d in deleted if isinstance(d, BaseException)]
    latencies = tuple(d for d in deleted if isinstance(d, float))
    outcome.phases.append(Phase(driver.mode, "burst DEL", latencies, wall, cpu))
    outcome.leaks = find_leaks(driver.node)
    return outcome


def soak(
    driver: Driver,
    pod: Namespace,
    cycles: int,
    check_every: int = 100,
    progress: Callable[[int], None] | None = None,
) -> StageOutcome:
    """``cycles`` times ADD, CHECK, DEL of a new container in ``pod``, one after another.

    Every ``check_every`` cycles (and at the end) the node must be empty again:
    a leak shows up where it starts, not only in the total.
    """
    outcome = StageOutcome(driver.mode, "soak")
    timings: dict[str, list[float]] = {"ADD": [], "CHECK": [], "DEL": []}
    cpu: dict[str, float] = dict.fromkeys(timings, 0.0)

    def timed(kind: str, operation: Callable[[Attachment], float], attachment: Attachment) -> None:
        # One operation at a time: the children's CPU in between is this one's.
        before = children_cpu_s()
        try:
            timings[kind].append(operation(attachment))
        finally:
            cpu[kind] += children_cpu_s() - before

    def add(attachment: Attachment) -> float:
        ms, result = driver.add(attachment)
        outcome.addresses.append(address_of(result))
        return ms

    started = time.perf_counter()
    for cycle in range(1, cycles + 1):
        attachment = driver.node.attachment(pod)
        try:
            timed("ADD", add, attachment)
            timed("CHECK", driver.check, attachment)
        except Exception as exc:
            outcome.failures.append(f"cycle {cycle}: {exc}")
        try:
            timed("DEL", driver.delete, attachment)
        except Exception as exc:
            outcome.failures.append(f"cycle {cycle} DEL: {exc}")
        if cycle % check_every == 0 and cycle != cycles:
            checking = time.perf_counter()
            leaks = find_leaks(driver.node)
            if not leaks.none:
                outcome.problems.append(f"after cycle {cycle}: left {leaks.details()}")
            started += time.perf_counter() - checking  # the soak's wall time is the cycles'
        if progress is not None:
            progress(cycle)
    wall = time.perf_counter() - started
    total = tuple(ms for kind in ("ADD", "CHECK", "DEL") for ms in timings[kind])
    outcome.phases.append(Phase(driver.mode, "soak cycle ops", total, wall, sum(cpu.values())))
    for kind, values in timings.items():
        outcome.phases.append(
            Phase(driver.mode, f"soak {kind}", tuple(values), sum(values) / 1000, cpu[kind])
        )
    outcome.leaks = find_leaks(driver.node)
    return outcome


# -- output -------------------------------------------------------------------------------------


def phase_table(phases: Sequence[Phase]) -> str:
    header = (
        f"{'mode':<8} {'phase':<16} {'ops':>6} {'wall s':>8} {'ops/s':>8}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/op':>10}"
    )
    lines = [header, "-" * len(header)]
    for phase in phases:
        lines.append(
            f"{phase.mode:<8} {phase.name:<16} {phase.ops:>6} {phase.wall_s:>8.2f}"
            f" {phase.throughput:>8.1f} {phase.p50:>8.1f} {phase.p99:>8.1f}"
            f" {phase.cpu_ms_per_op:>10.1f}"
        )
    return "\n".join(lines)


def outcome_table(outcomes: Sequence[StageOutcome]) -> str:
    header = f"{'mode':<8} {'stage':<6} {'addresses':>9} {'unique':>7} {'failures':>8}  leaks"
    lines = [header, "-" * (len(header) + 10)]
    for o in outcomes:
        lines.append(
            f"{o.mode:<8} {o.stage:<6} {len(o.addresses):>9} {o.unique_addresses:>7}"
            f" {len(o.failures):>8}  {o.leaks.summary()}"
            + (f"; {len(o.problems)} problem(s)" if o.problems else "")
        )
    return "\n".join(lines)


def ratio_table(phases: Sequence[Phase]) -> str:
    """flannel / direct for each phase both modes ran."""
    by_key = {(p.mode, p.name): p for p in phases}
    header = (
        f"{'phase':<16} {'throughput':>11} {'p50 latency':>12} {'p99 latency':>12}"
        f" {'CPU per op':>11}   (flannel / direct)"
    )
    lines = [header, "-" * len(header)]
    for phase in phases:
        if phase.mode != "flannel" or ("direct", phase.name) not in by_key:
            continue
        direct = by_key[("direct", phase.name)]
        lines.append(
            f"{phase.name:<16} {phase.throughput / direct.throughput:>11.2f}"
            f" {phase.p50 / direct.p50:>12.2f} {phase.p99 / direct.p99:>12.2f}"
            f" {phase.cpu_ms_per_op / direct.cpu_ms_per_op:>11.2f}"
        )
    return "\n".join(lines)


def as_json(outcomes: Sequence[StageOutcome]) -> str:
    return json.dumps(
        [
            {
                "mode": o.mode,
                "stage": o.stage,
                "phases": [
                    {
                        "name": p.name,
                        "ops": p.ops,
                        "wall_s": round(p.wall_s, 3),
                        "ops_per_s": round(p.throughput, 2),
                        "p50_ms": round(p.p50, 2),
                        "p99_ms": round(p.p99, 2),
                        "cpu_ms_per_op": round(p.cpu_ms_per_op, 2),
                    }
                    for p in o.phases
                ],
                "addresses": len(o.addresses),
                "unique_addresses": o.unique_addresses,
                "failures": o.failures[:20],
                "problems": o.problems[:20],
                "leaks": o.leaks.summary(),
            }
            for o in outcomes
        ],
        indent=2,
    )


def machine_note() -> str:
    load1, load5, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load1:.2f} (1 min) {load5:.2f} (5 min)"


# -- nodes and pods -----------------------------------------------------------------------------


@contextmanager
def load_node(label: str, root: Path, flanneld_masquerades: bool = False) -> Iterator[Node]:
    """A node namespace with the /16 lease and its files under ``root``; removed afterwards.

    The namespaces are ``flcni-<run>-<label>-*`` and go even when the body fails.
    """
    root.mkdir(parents=True, exist_ok=True)
    with namespaces(label) as factory:
        node = Node(factory, root, label)
        node.write_subnet_env(subnet_env(flanneld_masquerades))
        yield node


@contextmanager
def pod_pool(label: str, count: int) -> Iterator[list[Namespace]]:
    """``count`` pod namespaces, made one after another, all removed afterwards."""
    with namespaces(label) as factory:
        yield make_pods(factory, count)


def make_pods(factory: NamespaceFactory, count: int) -> list[Namespace]:
    return [factory(f"p{i}") for i in range(count)]


def work_root(base: str | None, label: str) -> Path:
    """A fresh directory for one run's files (subnet.env, dataDir, host-local, cache)."""
    return Path(tempfile.mkdtemp(prefix=f"flcni-{label}-", dir=base))


def untouched_host() -> Iterator[None]:
    """Around a module of load or GC tests: fail (never skip) when they cannot run
    here, and prove afterwards that the host's links and iptables rules are as they
    were and no namespace of the run is left."""
    problem = requirements_problem()
    if problem is not None:
        pytest.fail(problem)
    before = _root_snapshot()
    yield
    assert our_namespaces() == [], f"namespaces left: {our_namespaces()}"
    after = _root_snapshot()
    assert after[0] == before[0], "the campaign changed the host's links"
    assert after[1] == before[1], "the campaign changed the host's iptables rules"
