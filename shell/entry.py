"""The ``flannel`` executable's entry point: process-wide settings, then shell.main.

The cyclic garbage collector is off for the whole process, from before the
first import: a plugin process lives for one command, the commands build no
reference cycles (tests/test_shell_entry.py), so the collector's passes over
the freshly imported modules would only cost every start about 3 ms
(docs/performance.md).

A module that cannot be loaded (an I/O error under the install, a broken or
partial install) is answered with a CNI error object, not a traceback. It is
written by hand: ``json`` may be what failed to load.
"""

import gc
import sys

# Nothing that opens a file comes before the guard below, so that a module that
# cannot be read is answered rather than traced: not even typing or __future__.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

gc.disable()

# What the error object says; core.errors and core.versions may not load either.
_LATEST = "1.1.0"
_IO_FAILURE = 5
_INTERNAL = 999


def _json_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _cannot_load(exc: Exception) -> "NoReturn":
    code = _IO_FAILURE if isinstance(exc, OSError) else _INTERNAL
    msg = f"the flannel plugin cannot load its modules: {type(exc).__name__}: {exc}"
    details = "reinstall the plugin (see docs/install.md), or check the disk it lives on"
    answer = (
        f'{{"cniVersion": "{_LATEST}", "code": {code}, "msg": {_json_string(msg)},'
        f' "details": {_json_string(details)}}}\n'
    )
    try:
        sys.stdout.write(answer)
        sys.stdout.flush()
    except (OSError, ValueError):
        pass  # nobody can read it: the exit status says it failed
    raise SystemExit(1)


def _load() -> "Callable[[], None]":
    try:
        from shell.main import main as loaded  # noqa: PLC0415 - after gc.disable()
    except Exception as exc:  # before main exists, this is the last defence
        _cannot_load(exc)
    return loaded


main = _load()

__all__ = ["main"]
