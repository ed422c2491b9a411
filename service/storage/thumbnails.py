"""The stored thumbnail of each uploaded image, by SHA-256: the picture kept after the upload
is dropped (usecases.hashing writes it with the hashes; the pages and the exhibit read it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import Connection, false, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.storage.engine import is_sqlite
from service.storage.tables import receipts, thumbnails, utcnow


class Thumbnail(NamedTuple):
    media_type: str
    data: bytes


def store_thumbnail(conn: Connection, image_sha256: str, media_type: str, data: bytes) -> None:
    """Store the image's thumbnail unless one is stored already (same bytes, same picture)."""
    store_thumbnails(conn, media_type, {image_sha256: data})


def store_thumbnails(conn: Connection, media_type: str, pictures: Mapping[str, bytes]) -> None:
    """store_thumbnail for several images (by SHA-256) in one statement."""
    if not pictures:
        return
    insert = sqlite_insert if is_sqlite(conn) else pg_insert
    now = utcnow()
    conn.execute(insert(thumbnails).on_conflict_do_nothing(index_elements=["image_sha256"]),
                 [{"image_sha256": digest, "media_type": media_type, "data": data,
                   "created_at": now} for digest, data in pictures.items()])


def load_thumbnail(conn: Connection, image_sha256: str) -> Thumbnail | None:
    """The stored thumbnail of these bytes, or None."""
    row = conn.execute(select(thumbnails.c.media_type, thumbnails.c.data)
                       .where(thumbnails.c.image_sha256 == image_sha256)).first()
    return Thumbnail(row.media_type, bytes(row.data)) if row is not None else None


def images_without_thumbnail(conn: Connection, after: str | None, limit: int) -> list[str]:
    """Up to `limit` digests of uploaded images, above `after` in digest order, that are hashed
    (or given up on) and have no stored thumbnail: registered before thumbnails were stored."""
    query = (select(receipts.c.image_sha256).distinct()
             .select_from(receipts.outerjoin(
                 thumbnails, thumbnails.c.image_sha256 == receipts.c.image_sha256))
             .where(receipts.c.image_size.is_not(None), receipts.c.hash_pending == false(),
                    thumbnails.c.image_sha256.is_(None))
             .order_by(receipts.c.image_sha256).limit(limit))
    if after is not None:
        query = query.where(receipts.c.image_sha256 > after)
    return list(conn.execute(query).scalars())
