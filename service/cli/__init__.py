"""The `chronoseal` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from service.errors import ConfigError

# Each module defines `register(subparsers)`, adding its sub-command(s) with `func` set.
COMMAND_MODULES = (
    "service.cli.verify_token",
    "service.cli.verify",
    "service.cli.stamp",
    "service.cli.tsa",
    "service.cli.db",
    "service.cli.keys",
    "service.cli.integrations",
    "service.cli.serve",
    "service.cli.worker",
    "service.cli.sweep",
    "service.cli.up",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="chronoseal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except ConfigError as exc:
        # Any command (up, tsa, keys...) reading a bad setting stops here with its message:
        # it is the operator's to fix, so no traceback.
        print(f"chronoseal {args.command}: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
