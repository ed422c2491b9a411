"""The `--url` option and the Services that the database-backed commands share."""

from __future__ import annotations

import argparse

from service.errors import ConfigError
from service.settings import load_settings
from service.usecases.schema import database_exists, shown_url
from service.wiring import Services, build_services


def add_url_argument(parser: argparse.ArgumentParser) -> None:
    """`--url`: the database to use instead of DATABASE_URL or the SQLite file."""
    parser.add_argument("--url", help="database URL (default: DATABASE_URL or the SQLite file)")


def database_url(args: argparse.Namespace) -> str:
    """The URL named by `--url`, else the one settings give."""
    return str(args.url or load_settings().effective_database_url)


def command_services(args: argparse.Namespace, *, existing: bool = False) -> Services:
    """Services on the command's database, with the schema brought up to date. `existing`:
    ConfigError instead of creating a SQLite file that is not there yet."""
    overrides = {"database_url": args.url} if args.url else {}
    settings = load_settings(**overrides)
    url = settings.effective_database_url
    if existing and not database_exists(url):
        raise ConfigError(f"no Chronoseal database at {shown_url(url)}; start the service "
                          "there or set CHRONOSEAL_DATA_DIR (or DATABASE_URL)")
    return build_services(settings)
