"""Every ``console`` example in the docs is executed, so the docs cannot drift.

A ``console`` block holds commands (lines starting with ``$ ``) each followed by
its expected stdout. Commands run with bash from the repository root, with the
installed ``flannel`` and ``flannel-cni`` first on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


class Example(NamedTuple):
    source: str
    command: str
    expected: str


def examples() -> list[Example]:
    found = []
    for doc in DOCS:
        for block in BLOCK.findall(doc.read_text()):
            command: str | None = None
            expected: list[str] = []
            for line in block.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        found.append(Example(doc.name, command, "\n".join(expected)))
                    command, expected = line[2:], []
                else:
                    expected.append(line)
            if command is not None:
                found.append(Example(doc.name, command, "\n".join(expected)))
    return found


EXAMPLES = examples()


def test_the_docs_have_examples_to_run() -> None:
    assert len(EXAMPLES) >= 6
    assert {e.source for e in EXAMPLES} >= {"configuration.md", "errors.md", "troubleshooting.md"}


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=[f"{e.source}:{e.command[:60]}" for e in EXAMPLES]
)
def test_example_prints_what_the_docs_say(example: Example) -> None:
    bin_dir = str(Path(sys.executable).parent)
    done = subprocess.run(
        ["bash", "-c", example.command],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.rstrip("\n") == example.expected.rstrip("\n")
