"""The bounded CI version of campaign_faults.py: strace fault injection and SIGKILLs.

Every N of the plugin's state-directory calls (rename, fsync, unlink, and
the openat of dataDir, a record, a temporary file or subnet.env) along ADD,
DEL and a rolled-back ADD, with EIO and ENOSPC; every write of the plugin
after start-up; every program the plugin starts failing to execute; the
cleanup of a temporary file failing too; a sample of faults in the
delegates' own processes; 20 SIGKILLs at random points. After each, the
runtime's retry (DEL; or ADD then DEL) leaves nothing: no record, no
temporary file after a GC, no host-local reservation, no veth, no
interface in the pod. See reliability/faults.py for the machinery.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.faults import (
    ERRNOS,
    INTERNAL_MSG,
    Case,
    Fault,
    Profile,
    Rig,
    RigError,
    clean_duration,
    cleanup_faults,
    data_dir_calls,
    fault_case,
    kill_case,
    profiles,
    requirements,
    rig_in,
)


def record_kept(line: str) -> bool:
    return "cannot remove state record" in line


STRERROR = {"EIO": "Input/output error", "ENOSPC": "No space left on device"}
# shell/main.py writes the answer outside its try: an EIO on stdout ends in a
# traceback (exit 1, the answer lost). Reported; see test_unwritable_answer_*.
STDOUT_TRACEBACK = "traceback after a fault at flannel: stdout"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    try:
        requirements()
    except RigError as exc:
        pytest.fail(str(exc))
    with rig_in(tmp_path_factory.mktemp("faults"), "fb") as made:
        yield made


@pytest.fixture(scope="module")
def found(rig: Rig) -> dict[str, Profile]:
    return profiles(rig)


def _report(cases: list[Case]) -> str:
    return "\n".join(
        f"{c.op} {c.label} -> {c.outcome} at {c.sites} ({c.msg}): {c.problems}" for c in cases
    )


def test_profiles_see_the_state_directory_calls(rig: Rig, found: dict[str, Profile]) -> None:
    """The enumeration below is only as good as the trace it comes from."""
    on_data_dir = data_dir_calls(rig)
    add, delete, rollback = found["ADD"], found["DEL"], found["ADD-rollback"]
    assert len(add.indices("rename", on_data_dir)) == 1
    assert len(add.indices("fsync", on_data_dir)) == 2, "the temp file and dataDir"
    assert len(add.indices("write", on_data_dir)) == 1
    assert add.indices("unlink", on_data_dir) == [], "a clean ADD removes nothing"
    assert len(delete.indices("unlink", on_data_dir)) == 1
    assert len(rollback.indices("unlink", on_data_dir)) == 1, "the rollback removes the record"
    assert any("subnet.env" in c.line for c in add.plugin["openat"])
    assert [p.rsplit("/", 1)[-1] for p in add.execs] == ["setpriv", "bridge", "host-local"]
    assert add.count("openat", "plugin") > 50, "the interpreter's start-up is traced too"


STATE_DIR_CLASSES = [
    ("ADD", "openat"),
    ("ADD", "write"),
    ("ADD", "fsync"),
    ("ADD", "rename"),
    ("DEL", "openat"),
    ("DEL", "unlink"),
    ("DEL", "fsync"),
    ("ADD-rollback", "openat"),
    ("ADD-rollback", "fsync"),
    ("ADD-rollback", "rename"),
    ("ADD-rollback", "unlink"),
    ("DEL-unreadable", "openat"),
    ("DEL-unreadable", "unlink"),
    ("DEL-unreadable", "fsync"),
]


@pytest.mark.parametrize("errno", ERRNOS)
@pytest.mark.parametrize(("op", "syscall"), STATE_DIR_CLASSES)
def test_every_state_directory_fault_is_reported_and_retried_clean(
    rig: Rig, found: dict[str, Profile], op: str, syscall: str, errno: str
) -> None:
    numbers = found[op].indices(syscall, data_dir_calls(rig))
    assert numbers, f"{op} makes no {syscall} on dataDir or subnet.env"
    cases = [fault_case(rig, op, Fault(syscall, errno, str(n))) for n in numbers]
    report = _report(cases)

    assert [c for c in cases if c.failed] == [], report
    for case in cases:
        assert len(case.sites) == 1, report
        assert case.sites[0] in ("flannel: dataDir", "flannel: subnet.env"), report
        if op == "ADD":
            # Nothing stored safely, nothing delegated: ADD fails with 5, saying why.
            assert case.outcome == "error 5", report
            assert STRERROR[errno] in case.msg, report
        elif op == "DEL" and case.outcome != "success":
            # The record could not be opened or removed: error 5, record kept for a retry.
            assert case.outcome == "error 5", report
            assert STRERROR[errno] in case.msg, report
        elif op == "ADD-rollback":
            assert case.outcome.startswith("error "), report
        elif op == "DEL-unreadable":
            # Junk that cannot be opened or removed never blocks DEL (spec section 5).
            assert case.outcome in ("success", "error 5"), report
    if syscall == "unlink":
        # The delegate released, the record stayed for the runtime's DEL, and the
        # plugin said so: in its error, or on stderr when its answer is another
        # (the delegate's error of a rolled-back ADD; a best-effort DEL's success).
        assert [c.left for c in cases] == ["record"], report
        if op == "DEL":
            assert "cannot remove state record" in cases[0].msg, report
        else:
            assert any(record_kept(line) for line in cases[0].said), report


def test_every_write_of_the_plugin_is_survived(rig: Rig, found: dict[str, Profile]) -> None:
    """Writes after start-up: the record, the delegate's stdin, the answer, the log line."""
    cases = []
    for op in ("ADD", "DEL", "ADD-rollback", "DEL-unreadable"):
        count = found[op].count("write", "plugin")
        cases += [fault_case(rig, op, Fault("write", "EIO", str(n))) for n in range(1, count + 1)]
    report = _report(cases)

    problems = [p for c in cases for p in c.problems if p != STDOUT_TRACEBACK]
    assert problems == [], report
    sites = {s for c in cases for s in c.sites}
    assert {"flannel: dataDir", "flannel: pipe", "flannel: stderr", "flannel: stdout"} <= sites
    for case in cases:
        if case.sites == ["flannel: stderr"]:
            # A log line cannot be written: the answer is the same as without it
            # (ADD-rollback: the delegate's own error, bridge's code 999).
            expected = "error 999" if case.op == "ADD-rollback" else "success"
            assert case.outcome == expected, report
            assert INTERNAL_MSG not in case.msg, report
        if case.sites == ["flannel: pipe"]:
            assert case.outcome.startswith("error "), "the delegate got no configuration"


def test_unwritable_answer_gives_no_traceback(rig: Rig, found: dict[str, Profile]) -> None:
    stdout = found["ADD"].indices("write", lambda call: call.line.startswith("write(1<"))
    assert len(stdout) == 1
    case = fault_case(rig, "ADD", Fault("write", "EIO", str(stdout[0])))
    assert case.sites == ["flannel: stdout"]
    assert case.problems == []


@pytest.mark.parametrize("op", ["ADD", "DEL", "ADD-rollback"])
def test_every_program_failing_to_execute_is_reported_and_retried_clean(
    rig: Rig, found: dict[str, Profile], op: str
) -> None:
    programs = list(dict.fromkeys(found[op].execs))
    cases = [fault_case(rig, op, Fault("execve", "EIO", "1", "tree", p)) for p in programs]
    report = _report(cases)

    assert len(cases) == 3, report
    assert [c for c in cases if c.failed] == [], report
    for case, program in zip(cases, programs, strict=True):
        assert case.sites, report
        assert set(case.sites) == {f"exec {Path(program).name}"}, report
        assert case.outcome.startswith("error "), report


def test_failed_cleanup_leaves_a_temp_file_that_gc_removes(
    rig: Rig, found: dict[str, Profile]
) -> None:
    cases = [fault_case(rig, "ADD", f) for f in cleanup_faults(rig, found["ADD"], ["EIO"])]
    report = _report(cases)

    assert len(cases) == 4, "write, fsync, rename of the temp file; fsync of dataDir"
    assert [c for c in cases if c.failed] == [], report
    assert all(c.outcome == "error 5" for c in cases), report
    # Before the rename the temp file stays (its unlink failed); a GC took it (leaks()).
    assert sum(c.left == "temp file" for c in cases) == 3, report


def test_faults_in_the_delegates_processes_are_retried_clean(
    rig: Rig, found: dict[str, Profile]
) -> None:
    """Scope tree: the N-th write of every process of the invocation fails."""
    cases = []
    for op in ("ADD", "DEL"):
        count = found[op].count("write", "tree")
        cases += [
            fault_case(rig, op, Fault("write", "EIO", str(n), "tree")) for n in range(1, count + 1)
        ]
    report = _report(cases)

    assert cases, "the delegates write nothing?"
    problems = [p for c in cases for p in c.problems if p != STDOUT_TRACEBACK]
    assert problems == [], report
    assert any(not s.startswith("flannel:") for c in cases for s in c.sites), report


def test_random_sigkills_are_retried_clean(rig: Rig) -> None:
    rng = random.Random(20240601)
    spans = {op: clean_duration(rig, op) for op in ("ADD", "DEL")}
    cases = [kill_case(rig, op, rng.uniform(0, spans[op])) for op in ["ADD", "DEL"] * 10]
    report = _report(cases)

    assert [c for c in cases if c.failed] == [], report
    killed = [c for c in cases if c.outcome.startswith("killed")]
    assert len(killed) >= 5, f"most kills should land while the plugin runs:\n{report}"
    assert not any("bridge" in s for c in cases for s in c.sites), "bridge outlived the plugin"
