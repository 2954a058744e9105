"""Strict JSON decoding into plain Python values, as a Result."""

from __future__ import annotations

import json
from typing import Any, Final, TypeAlias

from returns.result import Failure, Result, Success

from core.errors import CniError, Code

JsonObject: TypeAlias = dict[str, Any]
# Far more than any network configuration or result uses, far less than recursion allows.
MAX_DEPTH: Final = 64


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON; Python's decoder accepts them by default.
    raise ValueError(f"{name} is not valid JSON")


_INFINITY: Final = float("inf")


def _finite_float(text: str) -> float:
    # 1e400 overflows to infinity, which encode() would write as "Infinity".
    value = float(text)
    if value in (_INFINITY, -_INFINITY):
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def depth(value: object) -> int:
    """How deeply arrays and objects nest in ``value`` (iterative: any depth is safe)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
        deepest = max(deepest, level)
    return deepest


def decode_object(data: bytes, what: str) -> Result[JsonObject, CniError]:
    """Decode ``data`` as one JSON object; error 6 saying why when it is not.

    Objects nest at most MAX_DEPTH levels, so that every later step (copying,
    encoding) works on whatever was accepted here.
    """
    try:
        value = json.loads(
            data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError as exc:
        return Failure(CniError(Code.DECODE_FAILURE, f"{what} is not UTF-8 (byte {exc.start})"))
    except RecursionError:
        return Failure(CniError(Code.DECODE_FAILURE, f"{what} is nested too deeply to decode"))
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return Failure(CniError(Code.DECODE_FAILURE, f"{what} is not valid JSON: {exc}"))
    if isinstance(value, dict) and depth(value) > MAX_DEPTH:
        return Failure(
            CniError(Code.DECODE_FAILURE, f"{what} nests deeper than {MAX_DEPTH} levels")
        )
    if not isinstance(value, dict):
        return Failure(
            CniError(
                Code.DECODE_FAILURE,
                f"{what} must be a JSON object, not {type_name(value)}",
            )
        )
    return Success(value)


def clone(value: JsonObject) -> JsonObject:
    """A deep copy of a decoded JSON object: copy.deepcopy's work without its import."""
    return {key: _clone(item) for key, item in value.items()}


def _clone(value: object) -> object:
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value  # str, int, float, bool and None are immutable


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
