"""One closed error type for every failure, carrying its CNI code (spec §2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Code(IntEnum):
    """CNI error codes: the well-known ones (CNI spec) and ours (100+)."""

    INCOMPATIBLE_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENVIRONMENT = 4
    IO_FAILURE = 5
    DECODE_FAILURE = 6
    INVALID_NETWORK_CONFIG = 7
    TRY_AGAIN_LATER = 11
    NOT_AVAILABLE = 50
    NOT_AVAILABLE_EXISTING_AFFECTED = 51
    # Ours, documented in README ("Error codes").
    DELEGATE_NOT_FOUND = 100
    DELEGATE_BAD_OUTPUT = 101
    SUBNET_DRIFT = 102
    INTERNAL = 999


@dataclass(frozen=True, slots=True)
class CniError:
    """A CNI error object as a value.

    ``code`` is an ``int`` rather than a :class:`Code` because a delegate's
    error is passed on unchanged, and a delegate may use codes we do not know.
    """

    code: int
    msg: str
    details: str = ""

    def to_object(self, cni_version: str) -> dict[str, object]:
        """The JSON object printed on stdout (spec §2, "Output")."""
        return {
            "cniVersion": cni_version,
            "code": int(self.code),
            "msg": self.msg,
            "details": self.details,
        }
