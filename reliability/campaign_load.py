"""Load campaign: a burst of concurrent ADDs then DELs, and a soak of ADD → CHECK → DEL cycles.

Each stage runs twice on the real bridge, once through the flannel plugin and
once with the runtime executing the same rendered delegate configuration
directly (see ``reliability/load.py``), each on a fresh node namespace,
stage by stage so that both modes see the same machine. It prints the figures,
the unique-address and leak check of each run, and the flannel/direct ratio.

    sudo .venv/bin/python -m reliability.campaign_load --burst 200 --soak 2000

Exit status 0 when every operation succeeded, every address was unique and
nothing was left (records, host-local reservations, veths, CNI-* chains);
1 otherwise. Figures depend on the machine and what else runs on it: they are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reliability.load import (
    MODES,
    Driver,
    Phase,
    StageOutcome,
    as_json,
    burst,
    load_node,
    machine_note,
    outcome_table,
    phase_table,
    pod_pool,
    ratio_table,
    requirements_problem,
    soak,
    work_root,
)


def run_burst(size: int, root: Path, masq: bool, verify_pods: bool) -> list[StageOutcome]:
    outcomes = []
    with pod_pool("bp", size) as pods:
        for mode in MODES:
            with load_node(f"b{mode[:2]}", root / f"burst-{mode}", masq) as node:
                outcome = burst(Driver(node, mode), pods, verify_pods)
            outcomes.append(outcome)
            _say(f"burst {mode}: {size} ADD + {size} DEL done, leaks: {outcome.leaks.summary()}")
    return outcomes


def run_soak(cycles: int, root: Path, masq: bool, check_every: int) -> list[StageOutcome]:
    outcomes = []
    with pod_pool("sp", 1) as (pod,):
        for mode in MODES:
            step = max(1, cycles // 10)

            def progress(cycle: int, mode: str = mode, step: int = step) -> None:
                if cycle % step == 0:
                    _say(f"soak {mode}: {cycle}/{cycles} cycles")

            with load_node(f"s{mode[:2]}", root / f"soak-{mode}", masq) as node:
                outcome = soak(Driver(node, mode), pod, cycles, check_every, progress)
            outcomes.append(outcome)
    return outcomes


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def report(outcomes: Sequence[StageOutcome]) -> str:
    phases: list[Phase] = [p for o in outcomes for p in o.phases]
    names = list(dict.fromkeys(p.name for p in phases))
    ordered = sorted(phases, key=lambda p: (names.index(p.name), MODES.index(p.mode)))
    parts = [
        "Per-operation latency and throughput",
        phase_table(ordered),
        "",
        "Addresses and leaks (records, host-local reservations, veths, CNI-* chains)",
        outcome_table(outcomes),
        "",
        "Ratio flannel / bridge direct",
        ratio_table(phases),
    ]
    problems = [
        f"{o.mode} {o.stage}: {item}" for o in outcomes for item in (*o.failures, *o.problems)
    ]
    problems += [
        f"{o.mode} {o.stage}: left {o.leaks.details()}" for o in outcomes if not o.leaks.none
    ]
    if problems:
        parts += ["", "PROBLEMS", *problems[:50]]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=200, help="concurrent pods (0: skip)")
    parser.add_argument("--soak", type=int, default=2000, help="ADD/CHECK/DEL cycles (0: skip)")
    parser.add_argument(
        "--check-every", type=int, default=100, help="soak: leak check every N cycles"
    )
    parser.add_argument(
        "--flanneld-masquerades",
        action="store_true",
        help="FLANNEL_IPMASQ=true: the bridge does not masquerade (no CNI-* chains to leak)",
    )
    parser.add_argument(
        "--no-pod-check",
        action="store_true",
        help="burst: skip reading every pod's eth0 address from the kernel",
    )
    parser.add_argument("--workdir", default=None, help="where node files go (default: /tmp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    problem = requirements_problem()
    if problem is not None:
        print(f"campaign_load: {problem}", file=sys.stderr)
        return 2
    root = work_root(args.workdir, "load")
    _say(f"campaign_load: {machine_note()}; files under {root}")
    started = time.perf_counter()
    outcomes: list[StageOutcome] = []
    if args.burst > 0:
        outcomes += run_burst(args.burst, root, args.flanneld_masquerades, not args.no_pod_check)
    if args.soak > 0:
        outcomes += run_soak(args.soak, root, args.flanneld_masquerades, args.check_every)
    print(
        f"Load campaign: burst {args.burst}, soak {args.soak};"
        f" bridge masquerades: {not args.flanneld_masquerades}; {machine_note()};"
        f" {time.perf_counter() - started:.0f} s in all\n"
    )
    print(report(outcomes))
    if args.json is not None:
        args.json.write_text(as_json(outcomes))
    if all(o.ok for o in outcomes):
        shutil.rmtree(root, ignore_errors=True)
        return 0
    print(f"node files kept for inspection in {root}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
