"""CNI spec versions we speak, and which commands each version allows (spec §2)."""

from __future__ import annotations

from typing import Final

SUPPORTED_VERSIONS: Final = (
    "0.1.0",
    "0.2.0",
    "0.3.0",
    "0.3.1",
    "0.4.0",
    "1.0.0",
    "1.1.0",
)
LATEST: Final = SUPPORTED_VERSIONS[-1]
# libcni treats a configuration without cniVersion as 0.1.0.
IMPLICIT_VERSION: Final = "0.1.0"

# The first version that knows each command; commands not listed exist in all.
COMMAND_SINCE: Final = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}


def version_key(version: str) -> tuple[int, ...]:
    """Orderable form of a supported version string."""
    return tuple(int(part) for part in version.split("."))


def command_allowed(command: str, version: str) -> bool:
    """Whether a configuration of ``version`` may be asked ``command``."""
    since = COMMAND_SINCE.get(command)
    return since is None or version_key(version) >= version_key(since)


def version_answer(requested: str | None) -> dict[str, object]:
    """The VERSION result: the caller's version when we support it, else ours."""
    answer = requested if requested in SUPPORTED_VERSIONS else LATEST
    return {"cniVersion": answer, "supportedVersions": list(SUPPORTED_VERSIONS)}
