"""Migration 0018: the thumbnails table, created by the upgrade, gone after the downgrade to
0017 and there again on the next upgrade; storing is insert-or-ignore."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from service.storage import make_engine, upgrade, write_transaction
from service.storage.migrate import alembic_config
from service.storage.thumbnails import load_thumbnail, store_thumbnail


def test_thumbnails_table_up_down_up(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        assert "thumbnails" in inspect(engine).get_table_names()
        with write_transaction(engine) as conn:
            store_thumbnail(conn, "ab" * 32, "image/webp", b"first")
            store_thumbnail(conn, "ab" * 32, "image/webp", b"second")  # ignored: same bytes
        with engine.connect() as conn:
            assert load_thumbnail(conn, "ab" * 32) == ("image/webp", b"first")
            assert load_thumbnail(conn, "cd" * 32) is None
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0017")
        assert "thumbnails" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert "thumbnails" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
