"""Migrations and engines: schema from empty, idempotent and race-free upgrades, engine set-up."""

from __future__ import annotations

import multiprocessing

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from service.storage import (
    DatabaseUnavailableError,
    current_revision,
    head_revision,
    make_engine,
    normalize_url,
    ping,
    upgrade,
)
from service.storage.migrate import alembic_config
from service.storage.tables import metadata, receipts, utcnow

UPGRADERS = 2  # two processes starting at once is the case `chronoseal up` creates


def test_upgrade_from_empty_creates_the_schema(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    assert upgrade(empty_db_url) == head_revision()
    engine = make_engine(empty_db_url)
    try:
        names = set(inspect(engine).get_table_names())
        assert {t.name for t in metadata.sorted_tables} <= names
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], "migrations and tables.py disagree"
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(empty_db_url: str) -> None:
    assert upgrade(empty_db_url) == head_revision()
    assert upgrade(empty_db_url) == head_revision()
    assert current_revision(empty_db_url) == head_revision()


def test_downgrade_then_upgrade_again(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert upgrade(engine) == head_revision()
    finally:
        engine.dispose()


def _upgrade_in_process(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    upgrade(url)


def test_concurrent_upgrades_from_two_processes(empty_db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(UPGRADERS)
    procs = [
        ctx.Process(target=_upgrade_in_process, args=(empty_db_url, barrier))
        for _ in range(UPGRADERS)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0] * UPGRADERS
    assert current_revision(empty_db_url) == head_revision()
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert versions == [(head_revision(),)]
    finally:
        engine.dispose()


def test_sqlite_engine_settings(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(db_engine) -> None:
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(
            receipts.insert().values(
                id="rcp_x", api_key_id="key_missing", status="pending", image_sha256="0" * 64,
                manifest_jcs=b"{}", manifest_digest="0" * 64, created_at=utcnow(),
            )
        )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///data/chronoseal.db", "sqlite:///data/chronoseal.db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_ping(db_engine) -> None:
    ping(db_engine)


def test_ping_unreachable_database_raises() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    try:
        with pytest.raises(DatabaseUnavailableError):
            ping(engine)
    finally:
        engine.dispose()
