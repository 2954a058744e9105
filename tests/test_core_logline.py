"""core.logline: the structured line and which logFile values count."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.logline import Entry, log_file_of, log_line

ENTRY = Entry(
    time="2026-11-27T18:00:00.123Z",
    command="ADD",
    container_id="c1",
    ifname="eth0",
    delegate="bridge",
    code=None,
    msg="",
    duration_ms=12.34567,
)


def test_a_success_is_one_json_line_with_every_field() -> None:
    line = log_line(ENTRY)
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line) == {
        "time": "2026-11-27T18:00:00.123Z",
        "command": "ADD",
        "containerID": "c1",
        "ifname": "eth0",
        "delegate": "bridge",
        "outcome": "success",
        "code": None,
        "msg": "",
        "durationMs": 12.346,
    }


def test_an_error_carries_its_code_and_message() -> None:
    record = json.loads(log_line(ENTRY._replace(code=11, msg="later")))
    assert (record["outcome"], record["code"], record["msg"]) == ("error", 11, "later")


@given(st.text(), st.text(), st.text())
def test_any_text_stays_on_one_line(container_id: str, ifname: str, msg: str) -> None:
    line = log_line(ENTRY._replace(container_id=container_id, ifname=ifname, msg=msg))
    assert line.count("\n") == 1
    assert json.loads(line)["msg"] == msg


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/var/log/flannel.log", "/var/log/flannel.log"),
        ("relative.log", None),
        ("", None),
        ("/bad\0path", None),
        (7, None),
        (None, None),
    ],
)
def test_only_an_absolute_path_is_a_log_file(value: object, expected: str | None) -> None:
    assert log_file_of({"logFile": value}) == expected
    assert log_file_of({}) is None
