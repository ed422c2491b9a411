"""`chronoseal db`: apply the schema migrations and show the schema revision.

The service upgrades on start as well; this command lets an operator migrate ahead of a
deploy, or check which revision a database is at. The URL defaults to the settings' one.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.engine import make_url

from service.cli._database import add_url_argument, database_url
from service.errors import ChronosealError
from service.storage.engine import normalize_url
from service.storage.migrate import current_revision, head_revision, upgrade


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


def _url(args: argparse.Namespace) -> str:
    return normalize_url(database_url(args))


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _upgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    try:
        revision = upgrade(url, args.revision)
    except ChronosealError as exc:
        print(f"chronoseal db upgrade: {exc}", file=sys.stderr)
        return 1
    print(f"{_shown(url)}: at revision {revision}")
    return 0


def _current(args: argparse.Namespace) -> int:
    url = _url(args)
    try:
        revision = current_revision(url)
    except ChronosealError as exc:
        print(f"chronoseal db current: {exc}", file=sys.stderr)
        return 1
    head = head_revision()
    state = "up to date" if revision == head else f"behind (newest is {head})"
    print(f"{_shown(url)}: revision {revision or '(empty)'}, {state}")
    return 0
