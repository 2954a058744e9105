"""The one structured log line each invocation leaves (pure: the shell supplies time and I/O)."""

import json
from typing import NamedTuple

from core.jsonvalue import JsonObject


class Entry(NamedTuple):
    """What happened in one invocation."""

    time: str  # UTC, ISO 8601 with milliseconds
    command: str
    container_id: str
    ifname: str
    delegate: str
    code: int | None  # None: success
    msg: str
    duration_ms: float


def log_line(entry: Entry) -> str:
    """One JSON object and a newline; keys in a fixed order so lines read alike."""
    return (
        json.dumps(
            {
                "time": entry.time,
                "command": entry.command,
                "containerID": entry.container_id,
                "ifname": entry.ifname,
                "delegate": entry.delegate,
                "outcome": "success" if entry.code is None else "error",
                "code": entry.code,
                "msg": entry.msg,
                "durationMs": round(entry.duration_ms, 3),
            }
        )
        + "\n"
    )


def log_file_of(conf: JsonObject) -> str | None:
    """The configuration's ``logFile`` when it is usable: an absolute path.

    Anything else is ignored rather than refused: logging never changes the
    CNI answer.
    """
    value = conf.get("logFile")
    if isinstance(value, str) and value.startswith("/") and "\0" not in value:
        return value
    return None
