"""The stored secrets as a whole: read and rewrite them for a rotation of the secrets key.

Storage keeps them opaque (sealed by the use cases, service/webhooks/secretbox.py); this module
only lists every row holding one and replaces a value that has not changed meanwhile.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Table, select, update

from service.storage.tables import callback_secrets, integrations, webhook_endpoints

# (table, its key column): every table with a `secret` column.
SECRET_TABLES: tuple[tuple[Table, Column[str]], ...] = (
    (callback_secrets, callback_secrets.c.api_key_id),
    (webhook_endpoints, webhook_endpoints.c.id),
    (integrations, integrations.c.id),
)


def stored_secrets(conn: Connection) -> list[tuple[str, str, str]]:
    """(table name, row key, stored value) of every secret."""
    out = []
    for table, key in SECRET_TABLES:
        out += [(table.name, row_key, value) for row_key, value in
                conn.execute(select(key, table.c.secret))]
    return out


def replace_secret(conn: Connection, table_name: str, row_key: str, old: str, new: str) -> bool:
    """Store `new` where the row still holds `old` (a secret rotated meanwhile is left alone)."""
    for table, key in SECRET_TABLES:
        if table.name == table_name:
            result = conn.execute(update(table).where(key == row_key, table.c.secret == old)
                                  .values(secret=new))
            return bool(result.rowcount)
    raise ValueError(f"no secrets in table {table_name!r}")
