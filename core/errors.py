"""One closed error type for every failure, carrying its CNI code (spec §2)."""

from typing import Final, NamedTuple


class Code:
    """CNI error codes: the well-known ones (CNI spec) and ours (100+).

    Plain ints rather than an IntEnum: building an enum class costs every
    plugin start about a millisecond, and codes are only compared and printed.
    """

    INCOMPATIBLE_VERSION: Final = 1
    UNSUPPORTED_FIELD: Final = 2
    UNKNOWN_CONTAINER: Final = 3
    INVALID_ENVIRONMENT: Final = 4
    IO_FAILURE: Final = 5
    DECODE_FAILURE: Final = 6
    INVALID_NETWORK_CONFIG: Final = 7
    TRY_AGAIN_LATER: Final = 11
    NOT_AVAILABLE: Final = 50
    NOT_AVAILABLE_EXISTING_AFFECTED: Final = 51
    # Ours, documented in README ("Error codes").
    DELEGATE_NOT_FOUND: Final = 100
    DELEGATE_BAD_OUTPUT: Final = 101
    SUBNET_DRIFT: Final = 102
    INTERNAL: Final = 999


class CniError(NamedTuple):
    """A CNI error object as a value.

    ``code`` is any ``int``: a delegate's error is passed on unchanged, and a
    delegate may use codes we do not know.
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
