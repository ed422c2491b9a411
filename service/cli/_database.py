"""The `--url` option and the migrated engine that the database-backed commands share."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine

from service.settings import load_settings
from service.storage import make_engine, upgrade


def add_url_argument(parser: argparse.ArgumentParser) -> None:
    """`--url`: the database to use instead of DATABASE_URL or the SQLite file."""
    parser.add_argument("--url", help="database URL (default: DATABASE_URL or the SQLite file)")


def database_url(args: argparse.Namespace) -> str:
    """The URL named by `--url`, else the one settings give."""
    return str(args.url or load_settings().effective_database_url)


def migrated_engine(args: argparse.Namespace) -> Engine:
    """An engine on the command's database with the schema brought up to date."""
    engine = make_engine(database_url(args))
    upgrade(engine)
    return engine
