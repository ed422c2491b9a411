"""The `--url` option and the Services that the database-backed commands share."""

from __future__ import annotations

import argparse

from service.settings import load_settings
from service.wiring import Services, build_services


def add_url_argument(parser: argparse.ArgumentParser) -> None:
    """`--url`: the database to use instead of DATABASE_URL or the SQLite file."""
    parser.add_argument("--url", help="database URL (default: DATABASE_URL or the SQLite file)")


def database_url(args: argparse.Namespace) -> str:
    """The URL named by `--url`, else the one settings give."""
    return str(args.url or load_settings().effective_database_url)


def command_services(args: argparse.Namespace) -> Services:
    """Services on the command's database, with the schema brought up to date."""
    overrides = {"database_url": args.url} if args.url else {}
    return build_services(load_settings(**overrides))
