"""Apply Alembic migrations from code, safely when several processes start at once.

`chronoseal up` starts API processes and workers together, and each upgrades the schema on
start. Only one may run the migrations; the others wait and then find nothing left to do:
- PostgreSQL: a transaction-scoped advisory lock around the migration transaction (DDL is
  transactional there, so a crash leaves the old schema, not half of the new one);
- SQLite: an exclusive flock on a sidecar file next to the database, then BEGIN IMMEDIATE.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from service.storage.engine import is_sqlite, make_engine, write_transaction
from service.storage.errors import StorageError

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
# pg_advisory_xact_lock key shared by every Chronoseal process: b"CHRONOSL" as a 64-bit integer.
MIGRATION_LOCK_ID = int.from_bytes(b"CHRONOSL", "big")
SQLITE_LOCK_SUFFIX = ".migrate.lock"
# Alembic logs its set-up ("Context impl ...", "Will assume ...", plugins) at INFO on every
# connection it configures; only the lines saying a migration ran are worth an operator's eye.
_ALEMBIC_SETUP_LOGGERS = ("alembic.runtime.migration", "alembic.runtime.plugins")
_MIGRATION_RAN = "Running "  # alembic.runtime.migration: "Running upgrade 0006 -> 0007, ..."


def _migration_lines_only(record: logging.LogRecord) -> bool:
    """Keep warnings and the lines naming a migration that ran; drop Alembic's set-up chatter."""
    return record.levelno > logging.INFO or record.getMessage().startswith(_MIGRATION_RAN)


def _quiet_alembic() -> None:
    """Install the filter once on Alembic's own loggers (idempotent; the app owns the handlers)."""
    for name in _ALEMBIC_SETUP_LOGGERS:
        logger = logging.getLogger(name)
        if _migration_lines_only not in logger.filters:
            logger.addFilter(_migration_lines_only)


def alembic_config(connection: Connection | None = None, secrets: Any = None) -> Config:
    """The packaged Alembic config; with `connection`, env.py migrates on that connection;
    `secrets` (a SecretBox) seals and opens secrets in the migrations that rewrite them."""
    config = Config(str(ALEMBIC_INI))
    if connection is not None:
        config.attributes["connection"] = connection
    config.attributes["secrets"] = secrets
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def _engine_for(engine_or_url: Engine | str) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # a private in-memory database has no other process to race with
        return
    with open(database + SQLITE_LOCK_SUFFIX, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # blocks until the other migrator finishes
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def upgrade(engine_or_url: Engine | str, revision: str = "head", *, secrets: Any = None
            ) -> str | None:
    """Migrate the database to `revision` (default: the newest); returns the revision reached.

    `secrets` is the SecretBox of the service (0012 seals stored secrets with it; needed only
    when the database holds secrets not yet sealed).

    A database already at the newest revision is left alone without asking Alembic, so the
    many processes `chronoseal up` starts neither migrate nor log anything.
    """
    _quiet_alembic()
    try:
        with _engine_for(engine_or_url) as engine:
            sqlite = is_sqlite(engine)
            lock = _sqlite_file_lock(engine) if sqlite else nullcontext()
            with lock, write_transaction(engine) as conn:
                if not sqlite:
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID}
                    )
                reached = MigrationContext.configure(conn).get_current_revision()
                if revision == "head" and reached == head_revision():
                    return reached
                command.upgrade(alembic_config(conn, secrets), revision)
                return MigrationContext.configure(conn).get_current_revision()
    except (SQLAlchemyError, CommandError, RuntimeError) as exc:
        raise StorageError(f"migration failed: {exc}") from exc


def current_revision(engine_or_url: Engine | str) -> str | None:
    """The revision the database is at, or None for an empty database."""
    _quiet_alembic()
    try:
        with _engine_for(engine_or_url) as engine, engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the schema revision: {exc}") from exc
