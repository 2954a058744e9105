"""Operator text: ages as kubectl shows them, status lines, aligned columns."""

from __future__ import annotations

import pytest

from core.display import columns, format_age, status_line


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5.0, "0s"),
        (0.4, "0s"),
        (59.9, "59s"),
        (119.0, "119s"),
        (120.0, "2m"),
        (3 * 60 + 59, "3m"),
        (2 * 3600 - 1, "119m"),
        (2 * 3600, "2h"),
        (47 * 3600, "47h"),
        (2 * 86400, "2d"),
        (400 * 86400, "400d"),
    ],
)
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_status_lines_align_after_eight_columns() -> None:
    assert (
        status_line(True, "subnet.env", "/run/flannel/subnet.env", "complete (age 3m)")
        == "ok      subnet.env /run/flannel/subnet.env complete (age 3m)"
    )
    assert status_line(False, "record", "abc:eth0", "gone") == "problem record abc:eth0 gone"


def test_columns_pad_all_but_the_last() -> None:
    lines = columns(("A", "LONGER"), [("wide cell", "x"), ("b", "")])
    assert lines == ["A           LONGER", "wide cell   x", "b"]
