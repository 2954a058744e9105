"""What a delegate's exit status and output mean (spec §2, "Delegation")."""

import json
from typing import Final, NamedTuple

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.jsonvalue import JsonObject, decode_object

STDERR_TAIL_BYTES: Final = 2048
# What the plugin reads of one delegate execution. A result or an error object
# is a few kilobytes; a delegate printing more than this on stdout is broken,
# and is stopped rather than let fill the plugin's memory. Of stderr, which is
# free-form logging passed on to the runtime, only the last part is kept.
MAX_STDOUT_BYTES: Final = 16 << 20
STDERR_KEPT_BYTES: Final = 64 << 10


class Outcome(NamedTuple):
    """How one execution of a delegate ended.

    ``stdout_overflow``: the delegate printed more than MAX_STDOUT_BYTES on
    stdout and was killed for it (``stdout`` is then what was read, or less).
    ``stderr_dropped``: how many bytes from the start of its stderr were
    dropped to keep the last STDERR_KEPT_BYTES.
    """

    returncode: int
    stdout: bytes
    stderr: bytes
    stdout_overflow: bool = False
    stderr_dropped: int = 0


def interpret(
    delegate: str, command: str, outcome: Outcome, expected_version: str | None = None
) -> Result[JsonObject | None, CniError]:
    """The delegate's result (ADD, VERSION), None (other commands), or its error.

    A delegate's error object becomes ours with code, msg and details unchanged;
    anything else it prints on failure is error 101 quoting its stderr. So is
    a delegate that printed more than MAX_STDOUT_BYTES, and, when
    ``expected_version`` is given, an ADD result of another cniVersion: the
    runtime reads our result in its configuration's version, and a result of
    another layout would be misread (0.2.0's ``ip4`` read as 1.0.0 has no
    address at all). A result without cniVersion is read in the configuration's
    version by libcni, so it passes.
    """
    if outcome.stdout_overflow:
        how = f"printed more than {_size(MAX_STDOUT_BYTES)} on stdout and was stopped"
        return Failure(_bad_output(delegate, command, how, outcome.stderr))
    if outcome.returncode == 0:
        if command not in ("ADD", "VERSION"):
            return Success(None)
        return (
            decode_object(outcome.stdout, f"{delegate}'s {command} result")
            .alt(lambda error: _bad_output(delegate, command, error.msg, outcome.stderr))
            .bind(lambda result: _of_version(delegate, command, result, expected_version))
        )
    error = _error_object(outcome.stdout)
    if error is not None:
        return Failure(error)
    if outcome.returncode < 0:
        how = f"was killed by {_signal_name(-outcome.returncode)}"
    else:
        how = f"exited with status {outcome.returncode} without a CNI error object"
    return Failure(_bad_output(delegate, command, how, outcome.stderr))


def _of_version(
    delegate: str, command: str, result: JsonObject, expected: str | None
) -> Result[JsonObject | None, CniError]:
    if expected is None or command != "ADD":
        return Success(result)
    version = result.get("cniVersion", "")
    if version in ("", expected):
        return Success(result)
    return Failure(
        CniError(
            Code.DELEGATE_BAD_OUTPUT,
            f"delegate {delegate!r} {command}: printed a result of cniVersion"
            f" {_quoted(version)} for a configuration of cniVersion {expected!r}",
            "a runtime would misread a result of another version;"
            " the delegate must answer in its configuration's cniVersion",
        )
    )


def _quoted(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count % (1 << 20) == 0 else f"{count} bytes"


def _error_object(stdout: bytes) -> CniError | None:
    decoded = decode_object(stdout, "error")
    obj = decoded.value_or(None)
    if obj is None:
        return None
    code, msg, details = obj.get("code"), obj.get("msg"), obj.get("details", "")
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(msg, str):
        return None
    if details is None:
        details = ""
    text = details if isinstance(details, str) else json.dumps(details)
    if code == 0:
        # Not an error code (bridge 1.1.1 says 0 when its IPAM cannot be executed):
        # a runtime could take it for success, so it becomes ours, words kept.
        return CniError(Code.DELEGATE_BAD_OUTPUT, f"{msg} (the delegate said error code 0)", text)
    return CniError(code, msg, text)


def _bad_output(delegate: str, command: str, how: str, stderr: bytes) -> CniError:
    tail = stderr[-STDERR_TAIL_BYTES:].decode("utf-8", "replace").strip()
    return CniError(
        Code.DELEGATE_BAD_OUTPUT,
        f"delegate {delegate!r} {command}: {how}",
        f"stderr: {tail}" if tail else "stderr was empty",
    )


def _signal_name(number: int) -> str:
    import signal  # noqa: PLC0415 - only a killed delegate needs it; every start would pay

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def supported_versions(version_result: JsonObject | None) -> tuple[str, ...]:
    """The versions a delegate's VERSION result lists (none when it lists nothing usable)."""
    listed = (version_result or {}).get("supportedVersions")
    if not isinstance(listed, list):
        return ()
    return tuple(v for v in listed if isinstance(v, str))
