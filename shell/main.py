"""The ``flannel`` executable: environment and stdin in, one CNI answer out."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

from returns.result import Failure, Result, Success

from core.environment import Invocation, parse_environment
from core.errors import CniError, Code
from core.jsonvalue import JsonObject, decode_object
from core.logline import Entry, log_file_of, log_line
from core.versions import LATEST, SUPPORTED_VERSIONS, version_answer
from shell import journal

if TYPE_CHECKING:
    from shell.commands import Answer
    from shell.delegate import Runner


def _version(stdin: bytes) -> Answer:
    """VERSION reads no file: stdin holds at most {"cniVersion": ...}."""
    if stdin.strip() == b"":
        return Success(version_answer(None))
    return decode_object(stdin, "VERSION request").map(
        lambda request: version_answer(
            request.get("cniVersion") if isinstance(request.get("cniVersion"), str) else None
        )
    )


def _request(stdin: bytes) -> JsonObject:
    """The input as far as it decodes, for the error's cniVersion and the log line."""
    return decode_object(stdin, "input").value_or({})


def _answer_version(request: JsonObject) -> str:
    """The cniVersion an error object carries: the input's when we speak it."""
    version = request.get("cniVersion", LATEST)
    return version if version in SUPPORTED_VERSIONS else LATEST


def _delegate_type(request: JsonObject) -> str:
    from core.netconf import DEFAULT_DELEGATE_TYPE  # noqa: PLC0415 - loaded by then

    delegate = request.get("delegate")
    kind = delegate.get("type", DEFAULT_DELEGATE_TYPE) if isinstance(delegate, dict) else None
    return kind if isinstance(kind, str) else DEFAULT_DELEGATE_TYPE


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _leave_log_line(
    env: Mapping[str, str],
    request: JsonObject,
    answer: Answer,
    started: float,
    stderr: IO[str],
) -> None:
    """One structured line per invocation: on stderr, and in logFile when set."""
    error = answer.failure() if isinstance(answer, Failure) else None
    command = env.get("CNI_COMMAND", "")
    line = log_line(
        Entry(
            time=_now(),
            command=command,
            container_id=env.get("CNI_CONTAINERID", ""),
            ifname=env.get("CNI_IFNAME", ""),
            delegate="" if command == "VERSION" else _delegate_type(request),
            code=None if error is None else int(error.code),
            msg="" if error is None else error.msg,
            duration_ms=(time.monotonic() - started) * 1000,
        )
    )
    stderr.write(line)
    log_file = log_file_of(request)
    if log_file is not None:
        journal.append(log_file, line, stderr)
    stderr.flush()


def dispatch(
    env: Mapping[str, str], stdin: bytes, stderr: IO[str], runner: Runner | None
) -> Answer:
    """Validate the invocation and run its command."""
    invocation = parse_environment(env)
    match invocation:
        case Failure(error):
            return Failure(error)
        case Success(Invocation(command="VERSION")):
            return _version(stdin)
        case Success(Invocation() as inv):
            return _command(inv, env, stdin, stderr, runner)
    raise AssertionError("unreachable")


def _command(
    inv: Invocation,
    env: Mapping[str, str],
    stdin: bytes,
    stderr: IO[str],
    runner: Runner | None,
) -> Answer:
    # Imported here: VERSION needs none of this, and every import costs every start.
    from core.netconf import parse_netconf  # noqa: PLC0415
    from shell import commands  # noqa: PLC0415
    from shell.delegate import Delegates  # noqa: PLC0415
    from shell.spawn import run_process  # noqa: PLC0415

    handlers = {
        "ADD": commands.add,
        "DEL": commands.delete,
        "CHECK": commands.check,
        "STATUS": commands.status,
        "GC": commands.gc,
    }
    return parse_netconf(stdin, inv.command).bind(
        lambda conf: handlers[inv.command](
            commands.Context(
                invocation=inv,
                conf=conf,
                delegates=Delegates(inv.path, env, stderr, runner or run_process),
                stderr=stderr,
            )
        )
    )


def run(
    env: Mapping[str, str],
    stdin: bytes,
    stdout: IO[str],
    stderr: IO[str],
    runner: Runner | None = None,
) -> int:
    """One plugin invocation; returns the exit status. Never raises."""
    started = time.monotonic()
    try:
        answer: Result[JsonObject | None, CniError] = dispatch(env, stdin, stderr, runner)
    except Exception as exc:  # the last line of defence: no traceback reaches a runtime
        answer = Failure(_unexpected_error(exc))
    request = _request(stdin)
    match answer:
        case Success(None):
            status, text = 0, ""
        case Success(result):
            status, text = 0, json.dumps(result) + "\n"
        case Failure(error):
            status, text = 1, json.dumps(error.to_object(_answer_version(request))) + "\n"
    try:
        stdout.write(text)
        stdout.flush()
    except (OSError, ValueError) as exc:
        # The runtime cannot read the answer: for it, the command failed (after a
        # failed ADD it runs DEL, which releases what this ADD took).
        status = 1
        with contextlib.suppress(OSError, ValueError):
            stderr.write(f"flannel: cannot write the answer to stdout: {exc}\n")
    try:
        _leave_log_line(env, request, answer, started, stderr)
    except Exception as exc:  # logging never changes the answer or the exit status
        stderr.write(f"flannel: cannot log: {type(exc).__name__}: {exc}\n")
    return status


def _unexpected_error(exc: Exception) -> CniError:
    where = exc.__traceback__
    while where is not None and where.tb_next is not None:
        where = where.tb_next
    place = f" at {where.tb_frame.f_code.co_filename}:{where.tb_lineno}" if where else ""
    if isinstance(exc, OSError):
        # Every I/O error the plugin expects is answered where it happens; one that
        # gets here (a module a command imports that cannot be read) is still one.
        return CniError(
            Code.IO_FAILURE,
            f"I/O error in the flannel plugin: {type(exc).__name__}: {exc}",
            f"raised{place}; check the disk the plugin and its modules live on",
        )
    return CniError(
        Code.INTERNAL,
        f"internal error in the flannel plugin: {type(exc).__name__}: {exc}",
        f"raised{place}; please report it with the network configuration",
    )


def _standard_fds() -> None:
    """Open /dev/null on any of fds 0-2 the runtime closed, so pipes never land there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)


def main() -> None:
    """The executable (entered through shell.entry): one invocation, then exit."""
    _standard_fds()
    try:
        stdin = sys.stdin.buffer.read() if sys.stdin is not None else b""
    except OSError:
        stdin = b""
    code = run(os.environ, stdin, sys.stdout, sys.stderr)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = 1  # nobody can read the answer: for the runtime, the command failed
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    # Everything is written and every child reaped: the interpreter's teardown
    # (module and object clean-up) would only cost every invocation about 8 ms
    # (docs/performance.md).
    os._exit(code)


if __name__ == "__main__":
    main()
