"""The crash and storage fault campaign: every N, every errno, random SIGKILLs.

Run as root from the repository root (it needs strace, iproute2 and Debian's
containernetworking-plugins; everything happens in ``flcni-`` namespaces):

    .venv/bin/python -m reliability.campaign_faults                  # the full campaign
    .venv/bin/python -m reliability.campaign_faults --syscalls rename,fsync --kills 20

For each operation (ADD; DEL after a clean ADD; ADD-rollback, an ADD whose
delegate fails so that the plugin rolls back), it traces one clean run to
count the calls, then fails every N-th call of each system call class with
each errno, in the plugin's process (scope ``plugin``) and in every process
of the invocation (scope ``tree``, the delegates too), plus every program
the plugin starts (execve, per program), plus cleanups that fail after a
dataDir fault. After each fault the runtime's retry (DEL; or ADD then DEL)
runs and nothing may be left: records, temp files after a GC, host-local
reservations, veths. Then ``--kills`` SIGKILLs at random points of ADD and
DEL, each followed by the retry and the same leak check.

It prints a table (class, op, cases, outcomes, where the faults landed,
failures) and every failing case; the exit status is 1 when a case failed by the
plugin (failures a delegate made, reporting success over its own fault, are
counted apart).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import TextIO

from reliability.faults import (
    ERRNOS,
    OPERATIONS,
    RETRY_STYLES,
    SCOPES,
    START_UP,
    SYSCALL_CLASSES,
    Case,
    Fault,
    Rig,
    RigError,
    Sites,
    clean_duration,
    cleanup_faults,
    command_of,
    every_n,
    fault_case,
    kill_case,
    profiles,
    scratch_rig,
    summarise,
)


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability.campaign_faults",
        description="Fault injection (strace) and SIGKILL campaign against the flannel plugin.",
    )
    parser.add_argument(
        "--syscalls",
        type=_list,
        default=list(SYSCALL_CLASSES),
        help=f"comma-separated fault classes (default: {','.join(SYSCALL_CLASSES)})",
    )
    parser.add_argument("--errnos", type=_list, default=list(ERRNOS), help="default: EIO,ENOSPC")
    parser.add_argument(
        "--ops", type=_list, default=list(OPERATIONS), help="default: ADD,DEL,ADD-rollback"
    )
    parser.add_argument("--scopes", type=_list, default=list(SCOPES), help="default: plugin,tree")
    parser.add_argument(
        "--retry",
        type=_list,
        default=list(RETRY_STYLES),
        help="after a faulted ADD: del, add-del or both (default: both)",
    )
    parser.add_argument(
        "--max-n", type=int, default=None, help="the largest N to inject at (default: every N)"
    )
    parser.add_argument("--kills", type=int, default=100, help="random SIGKILLs (default: 100)")
    parser.add_argument("--no-cleanup", action="store_true", help="skip the cleanup-fails cases")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill delays")
    parser.add_argument("--json", metavar="FILE", help="also write every case to FILE as JSON")
    parser.add_argument("--dry-run", action="store_true", help="count the cases, run none")
    args = parser.parse_args(argv)
    for name, given, known in (
        ("--syscalls", args.syscalls, SYSCALL_CLASSES),
        ("--ops", args.ops, OPERATIONS),
        ("--scopes", args.scopes, SCOPES),
        ("--retry", args.retry, RETRY_STYLES),
    ):
        unknown = [g for g in given if g not in known]
        if unknown:
            parser.error(f"{name}: unknown {unknown}; known: {', '.join(known)}")
    return args


def plan(rig: Rig, args: argparse.Namespace) -> list[tuple[str, Fault, str]]:
    """Every (operation, fault, retry style) the arguments ask for."""
    found = profiles(rig, args.ops)
    planned: list[tuple[str, Fault, str]] = []
    sites = Sites(rig)
    for op, fault in every_n(found, args.syscalls, args.errnos, args.scopes, args.max_n):
        styles = args.retry if command_of(op) == "ADD" else ["del"]
        if fault.scope == "plugin" and fault.path is None:
            # A fault while the interpreter loads ends with no answer or a 999:
            # the runtime's next step is DEL whatever the style.
            call = found[op].plugin[fault.syscall][int(fault.when) - 1]
            if sites.name(call).endswith(START_UP):
                styles = styles[:1]
        planned += [(op, fault, style) for style in styles]
    if not args.no_cleanup and "plugin" in args.scopes:
        for op in (o for o in args.ops if command_of(o) == "ADD"):
            planned += [(op, f, "del") for f in cleanup_faults(rig, found[op], args.errnos)]
    for op, prof in found.items():
        counts = ", ".join(
            f"{s} {prof.count(s, 'plugin')}/{prof.count(s, 'tree')}" for s in args.syscalls
        )
        print(f"# {op}: calls (plugin/busiest delegate process): {counts}", file=sys.stderr)
    return planned


def kills(rig: Rig, count: int, seed: int) -> list[Case]:
    """``count`` SIGKILLs, ADD and DEL alternately, uniform over a clean run's time."""
    rng = random.Random(seed)
    spans = {op: clean_duration(rig, op) for op in ("ADD", "DEL")}
    cases = []
    for index in range(count):
        op = ("ADD", "DEL")[index % 2]
        cases.append(kill_case(rig, op, rng.uniform(0, spans[op])))
        _progress(index + 1, count, cases[-1], "kill")
    return cases


def _progress(done: int, total: int, case: Case, what: str) -> None:
    if done % 25 == 0 or done == total or case.failed:
        mark = f" FAILED: {case.label}: {case.problems}" if case.failed else ""
        print(f"# {what} {done}/{total}{mark}", file=sys.stderr, flush=True)


def print_table(cases: Sequence[Case], out: TextIO) -> None:
    out.write("| class | op | cases | outcomes | where the faults landed | failures |\n")
    out.write("|---|---|---|---|---|---|\n")
    for group, op, n, outcomes, sites, failures in summarise(cases):
        out.write(f"| {group} | {op} | {n} | {outcomes} | {sites} | {failures} |\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    cases: list[Case] = []
    try:
        with scratch_rig("campaign") as rig:
            planned = plan(rig, args)
            if args.dry_run:
                print(f"{len(planned)} fault cases and {args.kills} kills planned")
                return 0
            for index, (op, fault, style) in enumerate(planned, 1):
                cases.append(fault_case(rig, op, fault, style))
                _progress(index, len(planned), cases[-1], "fault")
            cases += kills(rig, args.kills, args.seed)
    except RigError as exc:
        print(f"campaign_faults: cannot run: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    print_table(cases, sys.stdout)
    failed = [c for c in cases if c.failed]
    theirs = [c for c in failed if c.delegates_fault]
    print(
        f"\n{len(cases)} cases, {len(failed)} failed ({len(theirs)} a delegate's),"
        f" {elapsed:.0f} s ({elapsed / max(len(cases), 1):.2f} s a case)"
    )
    for case in failed:
        whose = " [a delegate's]" if case.delegates_fault else ""
        print(f"FAILED{whose} {case.op} {case.label} -> {case.outcome} at {case.sites}:")
        print(f"    {'; '.join(case.problems)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump([asdict(c) for c in cases], file, indent=1)
    return 1 if len(failed) > len(theirs) else 0


if __name__ == "__main__":
    sys.exit(main())
