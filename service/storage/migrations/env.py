"""Alembic environment: runs on a connection passed in by `service.storage.migrate`.

Run through the alembic command instead, it builds an engine from Chronoseal settings. It does
not configure logging: the application that calls `upgrade` owns that.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.storage.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs by table copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from service.settings import load_settings
    from service.storage.engine import make_engine

    engine = make_engine(load_settings().effective_database_url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


_main()
