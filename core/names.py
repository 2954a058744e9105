"""Character rules for identifiers that may end up in file names (spec §2).

They are enforced before any identifier reaches the state store, so that an
ID such as ``../../etc/x`` never becomes a path.
"""

from __future__ import annotations

from typing import Final

# A set rather than a regular expression: compiling one costs every plugin start.
_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ID_CHARS: Final = _ALNUM | frozenset("_.-")
IFNAME_MAX_BYTES: Final = 15
# A record is named "<container ID>:<ifname>" and a file name is at most 255
# bytes (NAME_MAX), so the ID may use what the longest ifname leaves.
CONTAINER_ID_MAX_BYTES: Final = 255 - 1 - IFNAME_MAX_BYTES


def is_valid_id(value: str) -> bool:
    """Container IDs and network names: ``[A-Za-z0-9][A-Za-z0-9_.-]*``."""
    return value[:1] in _ALNUM and all(ch in _ID_CHARS for ch in value)


def ifname_problem(value: str) -> str | None:
    """Why ``value`` is not a valid interface name, or None when it is.

    The kernel's own rule (dev_valid_name): 1-15 bytes, not "." or "..",
    no "/", ":" or whitespace.
    """
    try:
        size = len(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape: not a name
        return "must be text the kernel can take as a name"
    if size == 0 or size > IFNAME_MAX_BYTES:
        return f"must be 1 to {IFNAME_MAX_BYTES} bytes long, is {size}"
    if value in (".", ".."):
        return 'must not be "." or ".."'
    if any(ch in "/:" or ch.isspace() or ch == "\0" for ch in value):
        return 'must not contain "/", ":" or whitespace'
    return None


def is_valid_plugin_type(value: str) -> bool:
    """A plugin type is looked up in CNI_PATH: it must be a bare file name."""
    return value not in ("", ".", "..") and "/" not in value and "\0" not in value
