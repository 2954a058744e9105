"""The CNI environment variables, validated into an :class:`Invocation` (spec §2)."""

from collections.abc import Mapping
from typing import Final, NamedTuple

from returns.result import Failure, Result, Success

from core.errors import CniError, Code
from core.names import CONTAINER_ID_MAX_BYTES, ifname_problem, is_valid_id

COMMANDS: Final = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")

# Which variables each command needs non-empty (spec §2 table).
REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "ADD": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_COMMAND", "CNI_PATH"),
    "STATUS": ("CNI_COMMAND", "CNI_PATH"),
    "VERSION": ("CNI_COMMAND",),
}


class Invocation(NamedTuple):
    """What the runtime asked for, every field already validated."""

    command: str
    container_id: str
    netns: str
    ifname: str
    path: tuple[str, ...]
    args: tuple[tuple[str, str], ...]


def parse_environment(env: Mapping[str, str]) -> Result[Invocation, CniError]:
    """Validate the CNI variables; error 4 names every problem at once."""
    command = env.get("CNI_COMMAND", "")
    if command == "":
        return Failure(_invalid(["CNI_COMMAND is not set"]))
    if command not in COMMANDS:
        return Failure(_invalid([f"CNI_COMMAND {command!r} is not one of {', '.join(COMMANDS)}"]))
    problems = [f"{name} is not set" for name in REQUIRED[command] if env.get(name, "") == ""]
    container_id = env.get("CNI_CONTAINERID", "")
    ifname = env.get("CNI_IFNAME", "")
    args_text = env.get("CNI_ARGS", "")
    if "CNI_CONTAINERID" in REQUIRED[command] and container_id:
        problems.extend(_container_id_problems(container_id))
    if "CNI_IFNAME" in REQUIRED[command] and ifname:
        why = ifname_problem(ifname)
        if why is not None:
            problems.append(f"CNI_IFNAME {ifname!r} {why}")
    # CNI_ARGS belongs to an attachment: commands without one ignore it.
    attached = "CNI_CONTAINERID" in REQUIRED[command]
    args = _parse_args(args_text) if attached else ()
    if args is None:
        problems.append(f"CNI_ARGS {args_text!r} is not a list of KEY=VALUE pairs separated by ';'")
    if problems:
        return Failure(_invalid(problems))
    path = tuple(part for part in env.get("CNI_PATH", "").split(":") if part)
    return Success(
        Invocation(
            command=command,
            # Commands that need no container get none: only validated IDs travel.
            container_id=container_id if "CNI_CONTAINERID" in REQUIRED[command] else "",
            netns=env.get("CNI_NETNS", ""),
            ifname=ifname if "CNI_IFNAME" in REQUIRED[command] else "",
            path=path,
            args=args or (),
        )
    )


def _container_id_problems(container_id: str) -> list[str]:
    if not is_valid_id(container_id):
        return [
            (
                f"CNI_CONTAINERID {container_id!r} must start with a letter or digit"
                " and contain only letters, digits, '_', '.' and '-'"
            )
        ]
    if len(container_id) > CONTAINER_ID_MAX_BYTES:
        return [f"CNI_CONTAINERID is longer than {CONTAINER_ID_MAX_BYTES} characters"]
    return []


def _parse_args(text: str) -> tuple[tuple[str, str], ...] | None:
    pairs: list[tuple[str, str]] = []
    for item in text.split(";"):
        if item == "":
            continue
        key, sep, value = item.partition("=")
        if not sep or key == "":
            return None
        pairs.append((key, value))
    return tuple(pairs)


def _invalid(problems: list[str]) -> CniError:
    return CniError(
        Code.INVALID_ENVIRONMENT,
        "invalid CNI environment: " + "; ".join(problems),
    )
