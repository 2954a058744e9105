"""Text for operators, in the manner of kubectl and ip: short ages, aligned columns.

Kept pure so that what an operator reads is tested as exactly as what a
machine reads with ``--json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

MINUTE: Final = 60
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR
GAP: Final = "   "


def format_age(seconds: float) -> str:
    """``45s``, ``3m``, ``5h``, ``2d``: the largest unit that still reads as a count."""
    whole = int(max(seconds, 0.0))
    if whole < 2 * MINUTE:
        return f"{whole}s"
    if whole < 2 * HOUR:
        return f"{whole // MINUTE}m"
    if whole < 2 * DAY:
        return f"{whole // HOUR}h"
    return f"{whole // DAY}d"


def status_line(ok: bool, check: str, subject: str, message: str) -> str:
    """``ok      subnet.env /run/flannel/subnet.env complete (age 3m)``."""
    return f"{'ok' if ok else 'problem':<8}{check} {subject} {message}"


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by three spaces; the last one is not padded."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [
        GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
