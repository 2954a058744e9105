"""Build dist/flannel: the plugin as one executable file for /opt/cni/bin.

A zipapp holding the plugin's packages and its pure-Python dependencies
(returns, typing_extensions), each module both as source and as bytecode
compiled here (unchecked-hash .pyc beside the .py, the layout zipimport reads):
a host with the same Python minor version never compiles at start-up, any
other Python 3.11+ falls back to the sources. The operator CLI (shell.tools)
and the mypy/pytest/hypothesis integrations of returns are left out.

Usage: python scripts/build_zipapp.py [--output dist/flannel] [--python /usr/bin/python3]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import py_compile
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Parts of returns the plugin never imports; they would only make the file larger.
RETURNS_EXCLUDED = ("contrib", "pointfree", "methods", "context", "py.typed")
MAIN = """\
import sys

if sys.version_info < (3, 11):
    sys.stdout.write(
        '{"cniVersion": "1.1.0", "code": 999, "msg": "the flannel plugin needs'
        ' Python 3.11 or later", "details": "found %d.%d"}\\n' % sys.version_info[:2]
    )
    sys.exit(1)

from shell.main import main

main()
"""


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        sys.exit(f"build: {name} is not installed in {sys.executable}")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def _copy_tree(source: Path, target: Path, excluded: tuple[str, ...] = ()) -> None:
    shutil.copytree(
        source,
        target,
        ignore=lambda directory, names: [
            n
            for n in names
            if n == "__pycache__"
            or n.endswith((".pyc", ".pyi"))
            or (Path(directory) == source and n in excluded)
        ],
    )


def build(output: Path, interpreter: str) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        stage = Path(scratch) / "stage"
        stage.mkdir()
        _copy_tree(ROOT / "core", stage / "core")
        _copy_tree(ROOT / "shell", stage / "shell", excluded=("tools",))
        _copy_tree(_module_path("returns"), stage / "returns", excluded=RETURNS_EXCLUDED)
        shutil.copy2(_module_path("typing_extensions"), stage / "typing_extensions.py")
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
        zipapp.create_archive(stage, temporary, interpreter=interpreter, compressed=False)
        temporary.chmod(0o755)
        temporary.replace(output)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "flannel")
    parser.add_argument(
        "--python",
        default="/usr/bin/env -S python3 -I",
        help="the interpreter line (default: python3 from PATH, isolated from PYTHON* variables)",
    )
    args = parser.parse_args()
    built = build(args.output, args.python)
    print(f"{built} ({built.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
