"""The ``flannel-cni`` console script: argparse in, one subcommand, an exit status out.

Exit statuses: 0 fine, 1 something is wrong (or a file could not be read),
2 a usage error (argparse's). No traceback ever reaches the operator: an
unexpected exception becomes one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import IO

from shell.tools import doctor, records, render
from shell.tools.confdir import DEFAULT_CONF_DIR

INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flannel-cni",
        description="Operator's tools for the flannel CNI plugin on this node.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    show = sub.add_parser(
        "render",
        help="print the delegate config ADD would produce (executes nothing)",
        description="Print the delegate configuration ADD would produce for CONF and"
        " subnet.env, executing nothing; exit 1 with the CNI error when they are invalid.",
    )
    show.add_argument("conf", metavar="CONF", help="a .conf, or a .conflist with a flannel entry")
    show.add_argument("--subnet-file", metavar="F", help="subnet.env (default: the entry's)")

    check = sub.add_parser(
        "doctor",
        help="check subnet.env, plugins, dataDir and records; exit 1 when something is wrong",
        description="Check what ADD needs and what it left behind; exit 1 when anything is wrong.",
    )
    _conf_dir(check)
    check.add_argument(
        "--cni-path",
        metavar="P",
        help="plugin directories, ':'-separated (default: $CNI_PATH, else /opt/cni/bin)",
    )
    check.add_argument("--subnet-file", metavar="F", help="subnet.env (default: the networks')")
    _data_dir(check)
    _json(check)

    listing = sub.add_parser(
        "records",
        help="list the stored attachments",
        description="List the attachments the plugin holds state records for.",
    )
    _conf_dir(listing)
    _data_dir(listing)
    _json(listing)
    return parser


def _conf_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf-dir",
        metavar="D",
        default=DEFAULT_CONF_DIR,
        help=f"the runtime's network configurations (default: {DEFAULT_CONF_DIR})",
    )


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", metavar="D", help="the plugin's state directory (default: the networks')"
    )


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def dispatch(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Run the chosen subcommand; returns its exit status."""
    if args.command == "render":
        return render.run(args.conf, args.subnet_file, stdout)
    if args.command == "records":
        return records.run(args.conf_dir, args.data_dir, args.json, stdout, stderr)
    options = doctor.Options(
        args.conf_dir, args.cni_path, args.subnet_file, args.data_dir, args.json
    )
    return doctor.run(options, os.environ, stdout)


def run(argv: Sequence[str] | None, stdout: IO[str], stderr: IO[str]) -> int:
    """Parse, dispatch, and turn anything unexpected into one line. argparse exits 2 itself."""
    args = _parser().parse_args(argv)
    try:
        code = dispatch(args, stdout, stderr)
        stdout.flush()
        return code
    except BrokenPipeError:
        raise  # the reader went away: main() handles it
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        stderr.write(f"flannel-cni {args.command}: {exc.strerror or exc}{where}\n")
    except Exception as exc:  # the last line of defence: no traceback for the operator
        stderr.write(f"flannel-cni {args.command}: internal error: {type(exc).__name__}: {exc}\n")
    return 1


def main() -> None:
    """Console-script entry point."""
    try:
        code = run(None, sys.stdout, sys.stderr)
    except BrokenPipeError:
        # `flannel-cni records | head`: stop quietly, and keep the exit flush from failing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    except KeyboardInterrupt:
        code = INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    main()
