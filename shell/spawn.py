"""Executing a delegate: stdin in, stdout and stderr out, with os.posix_spawn.

Not ``subprocess``: importing it (with threading, selectors and locale) costs
every plugin start about 3.5 ms, a tenth of the interpreter's own start; this
is the part of it the plugin needs. The delegate is started through
``setpriv --pdeathsig KILL`` when util-linux provides it, so a runtime that
kills the plugin on a timeout does not leave the delegate working on alone.
"""

from __future__ import annotations

import os
import select
from collections.abc import Mapping
from typing import Final

from core.delegate_output import Outcome

SETPRIV: Final = "/usr/bin/setpriv"
# Linux signal numbers; importing signal.py (enums) for two constants costs ~0.5 ms.
# Python ignores SIGPIPE and SIGXFSZ for itself; the delegate must get the defaults.
_SIGPIPE: Final = 13
_SIGXFSZ: Final = 25
_CHUNK: Final = 65536


def _argv(executable: str) -> list[str]:
    if os.access(SETPRIV, os.X_OK):
        return [SETPRIV, "--pdeathsig", "KILL", "--", executable]
    return [executable]


def run_process(executable: str, env: Mapping[str, str], stdin: bytes) -> Outcome:
    """Run ``executable`` to completion; OSError when it cannot be started."""
    os.stat(executable)  # a missing or unreachable delegate fails here, not in setpriv
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        argv = _argv(executable)
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
    stdout, stderr = _exchange(in_w, out_r, err_r, stdin)
    _, status = os.waitpid(pid, 0)
    return Outcome(os.waitstatus_to_exitcode(status), stdout, stderr)


def _exchange(in_w: int, out_r: int, err_r: int, stdin: bytes) -> tuple[bytes, bytes]:
    """Feed stdin and drain stdout and stderr together, so no pipe fills and blocks."""
    os.set_blocking(in_w, False)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    readable = select.POLLIN | select.POLLHUP | select.POLLERR
    poller.register(out_r, readable)
    poller.register(err_r, readable)
    pending = memoryview(stdin)
    if pending:
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
    open_fds = {out_r, err_r} | ({in_w} if pending else set())
    while open_fds:
        for fd, _ in poller.poll():
            if fd == in_w:
                try:
                    pending = pending[os.write(in_w, pending[:_CHUNK]) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # the delegate stopped reading: its business
                    pending = pending[:0]
                if not pending:
                    poller.unregister(in_w)
                    os.close(in_w)
                    open_fds.discard(in_w)
                continue
            data = os.read(fd, _CHUNK)
            if data:
                chunks[fd].append(data)
            else:
                poller.unregister(fd)
                os.close(fd)
                open_fds.discard(fd)
    return b"".join(chunks[out_r]), b"".join(chunks[err_r])
