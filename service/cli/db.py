"""`chronoseal db`: apply the schema migrations and show the schema revision.

The service upgrades on start as well; this command lets an operator migrate ahead of a
deploy, or check which revision a database is at. The URL defaults to the settings' one.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli._database import add_url_argument, database_url
from service.errors import ChronosealError
from service.settings import load_settings
from service.usecases import schema
from service.wiring import secret_box


def register(subparsers: Any) -> None:
    """Add `db upgrade` and `db current`."""
    parser = subparsers.add_parser("db", help="database schema migrations")
    add_url_argument(parser)
    sub = parser.add_subparsers(dest="db_command", required=True)
    up = sub.add_parser("upgrade", help="migrate the schema to the newest revision")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    up.set_defaults(func=_upgrade)
    current = sub.add_parser("current", help="print the schema revision (and whether it is new)")
    current.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace) -> int:
    try:
        reached = schema.migrate(database_url(args), args.revision,
                                 secrets=secret_box(load_settings()))
    except ChronosealError as exc:
        print(f"chronoseal db upgrade: {exc}", file=sys.stderr)
        return 1
    print(f"{reached.shown_url}: at revision {reached.revision}")
    return 0


def _current(args: argparse.Namespace) -> int:
    try:
        found = schema.state(database_url(args))
    except ChronosealError as exc:
        print(f"chronoseal db current: {exc}", file=sys.stderr)
        return 1
    progress = "up to date" if found.up_to_date else f"behind (newest is {found.head})"
    print(f"{found.shown_url}: revision {found.revision or '(empty)'}, {progress}")
    return 0
