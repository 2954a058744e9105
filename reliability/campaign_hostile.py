"""The hostile-input campaign: hypothesis over stdin bytes and the CNI environment.

    .venv/bin/python reliability/campaign_hostile.py --cases 100000 --exec-cases 1000

Every case runs in a sandbox (reliability/hostile.py): the in-process cases
through ``shell.main.run`` with a recording runner, a sample through the
installed ``flannel`` executable with the recording stand-in delegates. Each
is checked against the invariants (stdout a success result or one CNI error
object, exit status to match, no traceback, no file created or removed
outside dataDir, nothing outside CNI_PATH executed, nothing executed for
input refused before rendering, the spec's code where the generator knows
it). It prints one table per part and the first violations, and exits 1 when
there was any. The bounded CI version is ``test_hostile_bounded.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root is the import root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reliability.hostile import Sandbox, Tally, iter_violations, run_cases
from tests.conftest import flannel_executable


def campaign(count: int, executable: str | None, rng_seed: int, progress: bool) -> Tally:
    """``count`` hypothesis cases, in-process (``executable`` None) or through it."""
    # In memory where there is /dev/shm: the cases are about input, not about the disk.
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="flannel-hostile-", dir=where) as tmp:
        sandbox = Sandbox(Path(tmp))
        started = time.monotonic()
        tally = run_cases(sandbox, count, executable, rng_seed, progress)
        tally.seconds = time.monotonic() - started
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="in-process cases")
    parser.add_argument("--exec-cases", type=int, default=1_000, help="cases via the executable")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    parts = [
        ("in-process (shell.main.run, recording runner)", args.cases, None),
        ("through the executable (stand-in delegates)", args.exec_cases, flannel_executable()),
    ]
    failed = False
    for title, count, executable in parts:
        if count <= 0:
            continue
        tally = campaign(count, executable, args.seed, progress=True)
        print()
        print(tally.table(f"hostile input, {title}"))
        for text in iter_violations(tally):
            print(text)
        failed = failed or tally.violation_count > 0
        print(flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
