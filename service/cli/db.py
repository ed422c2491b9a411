"""`chronoseal db`: apply the schema migrations, show the schema revision, backfill thumbnails.

The service upgrades on start as well; this command lets an operator migrate ahead of a
deploy, or check which revision a database is at. The URL defaults to the settings' one.
`db thumbnails` makes the thumbnails receipts from before they were stored lack, from the
uploads still kept (usecases.thumbnails).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli._database import add_url_argument, command_services, database_url
from service.errors import ChronosealError
from service.settings import load_settings
from service.usecases import schema
from service.usecases.schema import shown_url
from service.usecases.thumbnails import backfill_thumbnails
from service.wiring import secret_box


def register(subparsers: Any) -> None:
    """Add `db upgrade`, `db current` and `db thumbnails`."""
    parser = subparsers.add_parser("db", help="database schema migrations")
    add_url_argument(parser)
    sub = parser.add_subparsers(dest="db_command", required=True)
    up = sub.add_parser("upgrade", help="migrate the schema to the newest revision")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    up.set_defaults(func=_upgrade)
    current = sub.add_parser("current", help="print the schema revision (and whether it is new)")
    current.set_defaults(func=_current)
    thumbnails = sub.add_parser("thumbnails", help="make the missing thumbnails of images "
                                "registered before thumbnails were stored, from kept uploads")
    thumbnails.set_defaults(func=_thumbnails)


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


def _thumbnails(args: argparse.Namespace) -> int:
    try:
        services = command_services(args, existing=True)
        print(f"{shown_url(services.settings.effective_database_url)}: making thumbnails")
        done = backfill_thumbnails(services)
    except ChronosealError as exc:
        print(f"chronoseal db thumbnails: {exc}", file=sys.stderr)
        return 1
    print(f"{done.made} thumbnails made, {done.not_kept} images no longer kept (nothing to "
          f"make them from), {done.undecodable} undecodable")
    return 0
