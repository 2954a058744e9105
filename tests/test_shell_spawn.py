"""Executing a delegate (shell/spawn.py): bounded reads, no deadlock, no hang on exit.

Each test runs a small real program through :func:`shell.spawn.run_process`,
so the pipes, setpriv and the kernel behave as they do for a real delegate.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.delegate_output import MAX_STDOUT_BYTES, STDERR_KEPT_BYTES
from shell.spawn import SETPRIV, run_process

ENV = {"PATH": "/usr/bin:/bin", "CNI_COMMAND": "ADD"}


def program(directory: Path, name: str, body: str) -> str:
    """An executable Python script ``name`` in ``directory`` running ``body``."""
    path = directory / name
    path.write_text(f"#!{sys.executable} -IS\nimport os, sys, time\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Pids a test leaves running on purpose; killed when it ends."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_setpriv_is_there_so_these_tests_cover_the_path_delegates_take() -> None:
    assert os.access(SETPRIV, os.X_OK)


def test_stdin_goes_in_and_stdout_and_stderr_come_back(tmp_path: Path) -> None:
    exe = program(
        tmp_path,
        "echo",
        "data = sys.stdin.buffer.read()\n"
        "sys.stdout.buffer.write(data[::-1]); sys.stderr.write('log line\\n'); sys.exit(3)",
    )
    outcome = run_process(exe, ENV, b"abc")
    assert (outcome.returncode, outcome.stdout, outcome.stderr) == (3, b"cba", b"log line\n")
    assert (outcome.stdout_overflow, outcome.stderr_dropped) == (False, 0)


def test_megabytes_both_ways_at_once_do_not_deadlock(tmp_path: Path) -> None:
    # 10 MB in while it writes 10 MB out and 10 MB of stderr: every pipe would fill.
    exe = program(
        tmp_path,
        "cat",
        "while True:\n"
        "    chunk = sys.stdin.buffer.read1(65536)\n"
        "    if not chunk: break\n"
        "    sys.stdout.buffer.write(chunk); sys.stderr.buffer.write(chunk)",
    )
    data = os.urandom(10 * 1000 * 1000)
    outcome = run_process(exe, ENV, data)
    assert outcome.returncode == 0
    assert outcome.stdout == data
    assert outcome.stderr == data[-STDERR_KEPT_BYTES:]
    assert outcome.stderr_dropped == len(data) - STDERR_KEPT_BYTES


def test_a_delegate_that_never_reads_stdin_does_not_block_the_plugin(tmp_path: Path) -> None:
    exe = program(tmp_path, "deaf", "print('{}')")
    outcome = run_process(exe, ENV, b"x" * (10 * 1000 * 1000))
    assert (outcome.returncode, outcome.stdout) == (0, b"{}\n")


def test_stdout_beyond_the_cap_kills_the_delegate(tmp_path: Path) -> None:
    exe = program(
        tmp_path,
        "chatty",
        "sys.stderr.write('about to flood\\n'); sys.stderr.flush()\n"
        "block = b'x' * 65536\n"
        "while True: sys.stdout.buffer.write(block)",
    )
    started = time.monotonic()
    outcome = run_process(exe, ENV, b"{}")
    assert time.monotonic() - started < 20
    assert outcome.stdout_overflow is True
    assert outcome.returncode == -signal.SIGKILL
    assert len(outcome.stdout) <= MAX_STDOUT_BYTES
    assert b"about to flood" in outcome.stderr


def test_stdout_up_to_the_cap_is_read_whole(tmp_path: Path) -> None:
    exe = program(tmp_path, "big", f"sys.stdout.buffer.write(b'y' * {MAX_STDOUT_BYTES})")
    outcome = run_process(exe, ENV, b"")
    assert outcome.stdout_overflow is False
    assert outcome.stdout == b"y" * MAX_STDOUT_BYTES


def test_a_killed_wrapper_whose_child_holds_the_pipes_ends_the_exchange(
    tmp_path: Path, leftovers: list[int]
) -> None:
    # A wrapper script is killed while the program it started sleeps on with
    # its stdout and stderr: reading until end of file would wait for the child.
    pid_file = tmp_path / "child.pid"
    exe = program(
        tmp_path,
        "wrapper",
        "child = os.fork()\n"
        "if child == 0:\n"
        "    time.sleep(60); os._exit(0)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child))\n"
        "print('partial', flush=True)\n"
        "os.kill(os.getpid(), 9)",
    )
    started = time.monotonic()
    outcome = run_process(exe, ENV, b"{}")
    leftovers.append(int(pid_file.read_text()))
    assert time.monotonic() - started < 10
    assert outcome.returncode == -signal.SIGKILL
    assert outcome.stdout == b"partial\n"


def test_output_written_just_before_exit_is_all_read(tmp_path: Path) -> None:
    # The exit is seen through a pidfd; what the delegate left in the pipes still counts.
    exe = program(
        tmp_path,
        "burst",
        "sys.stdout.buffer.write(b'o' * 60000); sys.stderr.buffer.write(b'e' * 60000)",
    )
    for _ in range(20):
        outcome = run_process(exe, ENV, b"")
        assert (len(outcome.stdout), len(outcome.stderr)) == (60000, 60000)


def test_a_missing_executable_is_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run_process(str(tmp_path / "nothing"), ENV, b"")


def test_an_interpreter_that_does_not_exist_is_os_error_not_an_exit_status(
    tmp_path: Path,
) -> None:
    script = tmp_path / "orphan"
    script.write_text("#!/nonexistent/interpreter\n", encoding="utf-8")
    script.chmod(0o755)
    with pytest.raises(OSError, match="No such file or directory") as raised:
        run_process(str(script), ENV, b"")
    assert raised.value.errno == errno.ENOENT


def test_a_program_that_fails_with_127_by_itself_is_an_exit_status(tmp_path: Path) -> None:
    exe = program(tmp_path, "fails", "sys.stderr.write('command not found\\n'); sys.exit(127)")
    outcome = run_process(exe, ENV, b"")
    assert (outcome.returncode, outcome.stderr) == (127, b"command not found\n")
