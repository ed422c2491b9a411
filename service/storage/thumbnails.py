"""The stored thumbnail of each uploaded image, by SHA-256: the picture kept after the upload
is dropped (usecases.hashing writes it with the hashes; the pages and the exhibit read it)."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.storage.engine import is_sqlite
from service.storage.tables import thumbnails, utcnow


class Thumbnail(NamedTuple):
    media_type: str
    data: bytes


def store_thumbnail(conn: Connection, image_sha256: str, media_type: str, data: bytes) -> None:
    """Store the image's thumbnail unless one is stored already (same bytes, same picture)."""
    insert = sqlite_insert if is_sqlite(conn) else pg_insert
    conn.execute(insert(thumbnails)
                 .values(image_sha256=image_sha256, media_type=media_type, data=data,
                         created_at=utcnow())
                 .on_conflict_do_nothing(index_elements=["image_sha256"]))


def load_thumbnail(conn: Connection, image_sha256: str) -> Thumbnail | None:
    """The stored thumbnail of these bytes, or None."""
    row = conn.execute(select(thumbnails.c.media_type, thumbnails.c.data)
                       .where(thumbnails.c.image_sha256 == image_sha256)).first()
    return Thumbnail(row.media_type, bytes(row.data)) if row is not None else None
