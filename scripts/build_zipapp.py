"""Build dist/flannel: the plugin as one executable file for /opt/cni/bin.

A zipapp holding the modules the plugin can import, its own and those of its
pure-Python dependencies (returns, typing_extensions), each both as source and
as bytecode compiled here (unchecked-hash .pyc beside the .py, the layout
zipimport reads): a host with the same Python minor version never compiles at
start-up, any other Python 3.11+ falls back to the sources. The operator CLI
(shell.tools and the core modules only it uses) is left out.

The bytecode is stored, the sources deflated: every start reads the bytecode,
and inflating it cost a start about 5 ms (docs/performance.md); the sources are
read only by another Python version.

Usage: python scripts/build_zipapp.py [--output dist/flannel] [--python /usr/bin/python3]
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Every module the plugin can import on any command path; the dependencies'
# modules they pull in are what the file carries of them.
PLUGIN_MODULES = (
    "shell.entry",
    "shell.main",
    "shell.commands",
    "shell.delegate",
    "shell.spawn",
    "shell.store",
    "shell.lease",
    "core.netconf",
    "core.render",
    "core.drift",
    "core.check_routes",
)
OWN = ("core", "shell")
DEPENDENCIES = ("returns", "typing_extensions")
# -I: no PYTHON* variables, no user site; -S: no site at all. The file carries
# everything it imports, so the host's site-packages and .pth hooks are only cost
# (about 3 ms a start on Debian 12) and a way for the host to change the plugin.
INTERPRETER = "/usr/bin/env -S python3 -I -S"
MAIN = """\
import sys

if sys.version_info < (3, 11):
    sys.stdout.write(
        '{"cniVersion": "1.1.0", "code": 999, "msg": "the flannel plugin needs'
        ' Python 3.11 or later", "details": "found %d.%d"}\\n' % sys.version_info[:2]
    )
    sys.exit(1)

from shell.entry import main

main()
"""


def _module_files() -> list[tuple[Path, Path]]:
    """(source file, path inside the archive) of every module of the plugin and
    its dependencies the plugin imports, found by importing it in a clean interpreter."""
    probe = (
        "import importlib, sys\n"
        f"for name in {PLUGIN_MODULES!r}: importlib.import_module(name)\n"
        "for name, module in sorted(sys.modules.items()):\n"
        f"    if name.split('.')[0] in {OWN + DEPENDENCIES!r}:\n"
        "        print(name, module.__file__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(
            f"build: {sys.executable} cannot import the plugin ({last}); run the build with"
            " the project's environment: bash scripts/bootstrap, then .venv/bin/python"
        )
    listed = done.stdout
    files = []
    for line in listed.splitlines():
        name, file = line.split(" ", 1)
        parts = name.split(".")
        inside = (
            Path(*parts, "__init__.py")
            if file.endswith("__init__.py")
            else Path(*parts[:-1], f"{parts[-1]}.py")
        )
        files.append((Path(file), inside))
    return files


def build(output: Path, interpreter: str) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        stage = Path(scratch) / "stage"
        stage.mkdir()
        for source, inside in _module_files():
            (stage / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, stage / inside)
        (stage / "__main__.py").write_text(MAIN)
        compiled = compileall.compile_dir(
            stage,
            quiet=1,
            legacy=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        if not compiled:
            sys.exit("build: compiling the staged sources failed")
        (stage / "__main__.pyc").unlink()  # the entry point always runs from source
        output.parent.mkdir(parents=True, exist_ok=True)
        temporary = output.with_name(f".{output.name}.tmp")
        _write_archive(stage, temporary, interpreter)
        temporary.chmod(0o755)
        temporary.replace(output)
    return output


def _write_archive(stage: Path, target: Path, interpreter: str) -> None:
    """The interpreter line, then the zip: bytecode stored, everything else deflated.

    Entries in sorted order, so that the same sources build the same file.
    """
    with target.open("wb") as out:
        out.write(b"#!" + interpreter.encode() + b"\n")
        with zipfile.ZipFile(out, "w") as archive:
            for path in sorted(p for p in stage.rglob("*") if p.is_file()):
                stored = path.suffix == ".pyc"
                archive.write(
                    path,
                    path.relative_to(stage).as_posix(),
                    compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "flannel")
    parser.add_argument(
        "--python",
        default=INTERPRETER,
        help="the interpreter line (default: python3 from PATH, isolated, without site)",
    )
    args = parser.parse_args()
    built = build(args.output, args.python)
    print(f"{built} ({built.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
