"""Engines for SQLite (the embedded default) and PostgreSQL, and the transactions they need.

SQLite is used in WAL mode so readers never block the single writer, with a busy timeout so a
writer waits for the lock instead of failing, and with foreign keys on (off by default there).
SQLAlchemy, not the sqlite3 module, emits BEGIN: this makes DDL transactional and lets a write
transaction start with BEGIN IMMEDIATE, taking the write lock before its first read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from service.errors import ConfigError
from service.storage.errors import DatabaseUnavailableError

SQLITE_BUSY_TIMEOUT_MS = 5000  # a writer waits this long for the lock; batches commit in ms
PG_CONNECT_TIMEOUT_S = 10  # fail start-up and health checks instead of hanging on a dead host
DATABASE_FILE_MODE = 0o600  # secrets (sealed), manifests and records: the service's user only
_IMMEDIATE = "chronoseal_immediate"  # execution option: BEGIN IMMEDIATE on SQLite
_POLL_FIRST_S, _POLL_MAX_S = 0.0002, 0.002  # how often a waiting writer tries again
# One lock per SQLite engine: this process's writers queue here before they ask SQLite.
_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def normalize_url(url: str) -> str:
    """Map `postgres://` and `postgresql://` (as Heroku-style URLs give them) to psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url` (SQLite file or PostgreSQL), configured as the storage layer needs."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, **kwargs.pop("connect_args", {})}
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    backend = parsed.get_backend_name()
    raise ConfigError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")


def _private_file(database: Path) -> None:
    """Create the SQLite file readable by its owner only (DATABASE_FILE_MODE) before SQLite
    opens it: SQLite gives its -wal, -shm and journal files the database file's mode."""
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, DATABASE_FILE_MODE))
        if database.stat().st_mode & 0o777 != DATABASE_FILE_MODE:
            database.chmod(DATABASE_FILE_MODE)
    except PermissionError:
        pass  # a database file of another user (read-only use): SQLite reports what it can


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_IMMEDIATE, False):
            _begin_immediate(conn.connection.dbapi_connection)
        else:
            conn.exec_driver_sql("BEGIN")

    _WRITER_LOCKS[engine] = threading.RLock()


def _begin_immediate(dbapi_connection: Any) -> None:
    """BEGIN IMMEDIATE, polling for the write lock every few hundred microseconds.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between attempts: under a
    steady stream of short write transactions from several processes a writer keeps missing
    the lock and sleeps far longer than anyone holds it (bench/e2e.py: half of an upload's
    time went to that sleep). Only BEGIN is retried, before anything was done, so a retry is
    always safe; the busy timeout still bounds the wait.
    """
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        delay = _POLL_FIRST_S
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that reads then writes: BEGIN IMMEDIATE on SQLite, a plain BEGIN elsewhere.

    On SQLite a deferred transaction that reads first fails with "database is locked" when it
    later tries to write after another writer committed; IMMEDIATE takes the lock up front and
    so serialises read-then-write work such as claiming a batch. Threads of one process also
    queue on a lock of their own first: a thread then waits exactly as long as the writer before
    it, instead of polling against its own process.
    """
    lock = _WRITER_LOCKS.get(engine) or contextlib.nullcontext()
    with lock, engine.connect().execution_options(**{_IMMEDIATE: True}) as conn, conn.begin():
        yield conn


@contextmanager
def connection_for(bind: Engine | Connection) -> Iterator[Connection]:
    """Use a caller's connection (and its transaction), or a new write transaction on an engine."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with write_transaction(bind) as conn:
            yield conn


def ping(engine: Engine) -> None:
    """Raise DatabaseUnavailableError unless the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except SQLAlchemyError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {exc.__class__.__name__}") from exc


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # "database or disk is full" (sqlite3.OperationalError.sqlite_errorcode)
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc` says a disk (a file's, SQLite's or PostgreSQL's) has no room left."""
    if isinstance(exc, OSError):
        return exc.errno in _NO_SPACE
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        if isinstance(orig, sqlite3.Error):
            return (getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL
                    or "database or disk is full" in str(orig))
        return getattr(orig, "sqlstate", None) == _PG_DISK_FULL
    return False
