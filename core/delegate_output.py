"""What a delegate's exit status and output mean (spec §2, "Delegation")."""

from __future__ import annotations

import json
from typing import Final, NamedTuple

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.jsonvalue import JsonObject, decode_object

STDERR_TAIL_BYTES: Final = 2048


class Outcome(NamedTuple):
    """How one execution of a delegate ended."""

    returncode: int
    stdout: bytes
    stderr: bytes


def interpret(delegate: str, command: str, outcome: Outcome) -> Result[JsonObject | None, CniError]:
    """The delegate's result (ADD, VERSION), None (other commands), or its error.

    A delegate's error object becomes ours with code, msg and details unchanged;
    anything else it prints on failure is error 101 quoting its stderr.
    """
    if outcome.returncode == 0:
        if command not in ("ADD", "VERSION"):
            return Success(None)
        return decode_object(outcome.stdout, f"{delegate}'s {command} result").alt(
            lambda error: _bad_output(delegate, command, error.msg, outcome.stderr)
        )
    error = _error_object(outcome.stdout)
    if error is not None:
        return Failure(error)
    if outcome.returncode < 0:
        how = f"was killed by {_signal_name(-outcome.returncode)}"
    else:
        how = f"exited with status {outcome.returncode} without a CNI error object"
    return Failure(_bad_output(delegate, command, how, outcome.stderr))


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
    return CniError(code, msg, details if isinstance(details, str) else json.dumps(details))


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


def supports(version_result: JsonObject | None, version: str) -> bool:
    """Whether a delegate's VERSION result lists ``version``."""
    return version in supported_versions(version_result)
