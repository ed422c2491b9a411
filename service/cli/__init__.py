"""The `chronoseal` command; each sub-command is a module of this package (COMMAND_MODULES)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from service.errors import ConfigError
from service.runtime.metrics_dir import share_metrics

# Each module defines `register(subparsers)`, adding its sub-command(s) with `func` set.
COMMAND_MODULES = (
    "service.cli.verify_token",
    "service.cli.verify",
    "service.cli.stamp",
    "service.cli.watch",
    "service.cli.disclose",
    "service.cli.exhibit",
    "service.cli.tsa",
    "service.cli.db",
    "service.cli.keys",
    "service.cli.integrations",
    "service.cli.secrets",
    "service.cli.serve",
    "service.cli.worker",
    "service.cli.sweep",
    "service.cli.renew",
    "service.cli.up",
)


DESCRIPTION = ("Chronoseal: RFC 3161 timestamps for AI-generated images and their generation "
               "records, and evidence anyone can check. `chronoseal COMMAND --help` shows a "
               "command's options.")


class _DefaultsShown(argparse.HelpFormatter):
    """Help that states each option's default, when it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _DefaultsShown
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for child in action.choices.values():
                _show_defaults(child)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered, or only `command`'s when
    it names one: a command then imports only its own module (`stamp` starts in half the
    time: the server's modules are never loaded)."""
    parser = argparse.ArgumentParser(prog="chronoseal", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    module = f"service.cli.{(command or '').replace('-', '_')}"
    for name in (module,) if module in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _show_defaults(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    if "prometheus_client" not in sys.modules:  # it chooses its mode when first imported
        share_metrics(command)
    args = build_parser(command).parse_args(argv)
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
