"""Executing a delegate: stdin in, stdout and stderr out, with os.posix_spawn.

Not ``subprocess``: importing it (with threading, selectors and locale) costs
every plugin start about 3.5 ms, a tenth of the interpreter's own start; this
is the part of it the plugin needs. The delegate is started through
``setpriv --pdeathsig KILL`` when util-linux provides it, so a runtime that
kills the plugin on a timeout does not leave the delegate working on alone.

What is read is bounded (core.delegate_output): a delegate printing more than
MAX_STDOUT_BYTES on stdout is killed, and of its stderr only the last
STDERR_KEPT_BYTES are kept. Both pipes are drained all along, so a delegate
never blocks on a full pipe. The delegate's exit is watched through a pidfd:
once it has exited, what it wrote is read and the exchange ends, even when a
process it started still holds the pipes open (a wrapper script killed while
its child sleeps on, a daemon that kept its parent's stdout).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from collections.abc import Mapping
from typing import Final

from core.delegate_output import MAX_STDOUT_BYTES, STDERR_KEPT_BYTES, Outcome

SETPRIV: Final = "/usr/bin/setpriv"
# Linux signal numbers; importing signal.py (enums) for three constants costs ~0.5 ms.
# Python ignores SIGPIPE and SIGXFSZ for itself; the delegate must get the defaults.
_SIGKILL: Final = 9
_SIGPIPE: Final = 13
_SIGXFSZ: Final = 25
_CHUNK: Final = 65536
# A pipe holds at most /proc/sys/fs/pipe-max-size (1 MiB by default): reading
# this much after the delegate exited has everything it wrote.
_DRAIN_BYTES: Final = (1 << 20) + _CHUNK
# setpriv's exit statuses when it cannot execute the delegate (util-linux's
# EX_EXEC_FAILED and EX_EXEC_ENOENT), with a message starting "setpriv: ".
_SETPRIV_EXEC_FAILED: Final = {126: errno.EACCES, 127: errno.ENOENT}


def _argv(executable: str) -> list[str]:
    if os.access(SETPRIV, os.X_OK):
        return [SETPRIV, "--pdeathsig", "KILL", "--", executable]
    return [executable]


class DelegateIOError(OSError):
    """The delegate started, then reading or writing its pipes failed."""


def run_process(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
    """Run ``executable`` to completion; OSError when it cannot be started."""
    os.stat(executable)  # a missing or unreachable delegate fails here, not in setpriv
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    argv = _argv(executable)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            dict(env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
            setsigdef=(_SIGPIPE, _SIGXFSZ),
        )
    except OSError:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    exchange = _Exchange(pid, in_w, out_r, err_r, stdin)
    try:
        exchange.run()
    except OSError as exc:
        # The delegate runs, but talking to it failed: stop it, reap it, say so.
        with contextlib.suppress(OSError):
            os.kill(pid, _SIGKILL)
        os.waitpid(pid, 0)
        raise DelegateIOError(exc.errno, exc.strerror or str(exc)) from exc
    finally:
        exchange.close()
    _, status = os.waitpid(pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = b"".join(exchange.stdout), bytes(exchange.stderr)
    if argv[0] == SETPRIV:
        _raise_if_not_executed(executable, returncode, stdout, stderr)
    return Outcome(returncode, stdout, stderr, exchange.overflow, exchange.dropped)


def _raise_if_not_executed(executable: str, returncode: int, stdout: bytes, stderr: bytes) -> None:
    """setpriv could not execute the delegate: as OSError, as posix_spawn would say it."""
    if returncode not in _SETPRIV_EXEC_FAILED or stdout or not stderr.startswith(b"setpriv: "):
        return
    line = stderr.decode("utf-8", "replace").strip().splitlines()[0]
    reason = line.removeprefix("setpriv: ").removeprefix(f"failed to execute {executable}: ")
    raise OSError(_SETPRIV_EXEC_FAILED[returncode], reason, executable)


def _pidfd(pid: int) -> int | None:
    """A descriptor that polls readable once ``pid`` exited; None where Linux has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3, or forbidden by a sandbox
        return None


class _Exchange:
    """Feeds stdin and drains stdout and stderr together, so no pipe fills and blocks."""

    def __init__(self, pid: int, in_w: int, out_r: int, err_r: int, stdin: bytes) -> None:
        self.pid = pid
        self.in_w, self.out_r, self.err_r = in_w, out_r, err_r
        self.stdout: list[bytes] = []
        self.stdout_size = 0
        self.overflow = False
        self.stderr = bytearray()
        self.dropped = 0
        self.pending = memoryview(stdin)
        self.pidfd = _pidfd(pid)
        self.poller = select.poll()
        self.open_fds = {out_r, err_r, in_w}
        for fd in (out_r, err_r, in_w):
            os.set_blocking(fd, False)

    def run(self) -> None:
        readable = select.POLLIN | select.POLLHUP | select.POLLERR
        self.poller.register(self.out_r, readable)
        self.poller.register(self.err_r, readable)
        if self.pending:
            self.poller.register(self.in_w, select.POLLOUT)
        else:
            self._close(self.in_w)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)
        while self.open_fds & {self.out_r, self.err_r}:
            exited = False
            for fd, _ in self.poller.poll():
                if fd == self.pidfd:
                    exited = True
                elif fd == self.in_w:
                    self._write()
                elif fd in self.open_fds:
                    self._read(fd)
            if exited:
                self._drain()
                break
        excess = len(self.stderr) - STDERR_KEPT_BYTES
        if excess > 0:
            del self.stderr[:excess]
            self.dropped += excess

    def close(self) -> None:
        for fd in list(self.open_fds):
            self._close(fd)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def _close(self, fd: int) -> None:
        if fd in self.open_fds:
            self.open_fds.discard(fd)
            with contextlib.suppress(KeyError):  # stdin is registered only with data
                self.poller.unregister(fd)
            os.close(fd)

    def _write(self) -> None:
        try:
            self.pending = self.pending[os.write(self.in_w, self.pending[:_CHUNK]) :]
        except BlockingIOError:
            return
        except BrokenPipeError:  # the delegate stopped reading: its business
            self.pending = self.pending[:0]
        if not self.pending:
            self._close(self.in_w)

    def _read(self, fd: int) -> int:
        """Read what is there; the number of bytes read, -1 at end of file."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return 0
        if not data:
            self._close(fd)
            return -1
        if fd == self.out_r:
            self._keep_stdout(data)
        else:
            self._keep_stderr(data)
        return len(data)

    def _keep_stdout(self, data: bytes) -> None:
        if self.overflow:
            return  # killed already; drained so that nothing blocks
        self.stdout_size += len(data)
        if self.stdout_size <= MAX_STDOUT_BYTES:
            self.stdout.append(data)
            return
        self.overflow = True
        self.stdout = []
        os.kill(self.pid, _SIGKILL)  # not reaped yet: the pid is still the delegate's

    def _keep_stderr(self, data: bytes) -> None:
        self.stderr += data
        excess = len(self.stderr) - STDERR_KEPT_BYTES
        if excess > STDERR_KEPT_BYTES:  # trim in large steps, not on every read
            del self.stderr[:excess]
            self.dropped += excess

    def _drain(self) -> None:
        """After the delegate exited: read what it left in the pipes, no more."""
        for fd in (self.out_r, self.err_r):
            budget = _DRAIN_BYTES
            while fd in self.open_fds and budget > 0:
                count = self._read(fd)
                if count <= 0:
                    break
                budget -= count
