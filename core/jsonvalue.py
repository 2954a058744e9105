"""Strict JSON decoding into plain Python values, as a Result."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

from returns.result import Failure, Result, Success

from core.errors import CniError, Code

JsonObject: TypeAlias = dict[str, Any]


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON; Python's decoder accepts them by default.
    raise ValueError(f"{name} is not valid JSON")


def decode_object(data: bytes, what: str) -> Result[JsonObject, CniError]:
    """Decode ``data`` as one JSON object; error 6 saying why when it is not."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return Failure(CniError(Code.DECODE_FAILURE, f"{what} is not UTF-8 (byte {exc.start})"))
    except RecursionError:
        return Failure(CniError(Code.DECODE_FAILURE, f"{what} is nested too deeply to decode"))
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return Failure(CniError(Code.DECODE_FAILURE, f"{what} is not valid JSON: {exc}"))
    if not isinstance(value, dict):
        return Failure(
            CniError(
                Code.DECODE_FAILURE,
                f"{what} must be a JSON object, not {type_name(value)}",
            )
        )
    return Success(value)


def encode(value: object) -> bytes:
    """Canonical bytes: sorted keys, so equal values store and send identically."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
