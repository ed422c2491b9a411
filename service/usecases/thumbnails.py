"""Backfill the thumbnails of images registered before thumbnails were stored.

The hashing worker stores each upload's thumbnail with its hashes (migration 0018 added them),
and the pages and the exhibit show it once the upload is dropped. Receipts hashed before that
have none: their picture is gone with the upload, unless the upload is still kept
(CHRONOSEAL_KEEP_IMAGES). `chronoseal db thumbnails` makes the missing ones from the kept
uploads, a page of digests at a time, one image in memory at a time; images no longer kept are
counted and left (nothing to make them from). Run it again and it finds nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.evidence.thumbnail import (
    STORED_THUMBNAIL_MEDIA_TYPE,
    THUMBNAIL_MAX_SIDE,
    load_rgb,
    stored_thumbnail,
)
from service.storage.engine import write_transaction
from service.storage.thumbnails import images_without_thumbnail, store_thumbnails
from service.wiring import Services

PAGE = 100  # digests read, and thumbnails written, per transaction


@dataclass
class Backfilled:
    """What a backfill did: thumbnails made, images with no kept upload, and undecodable ones."""

    made: int = 0
    not_kept: int = 0
    undecodable: int = 0


def backfill_thumbnails(services: Services) -> Backfilled:
    """Make and store the missing thumbnails of kept uploads (see the module docstring)."""
    done = Backfilled()
    after: str | None = None
    while True:
        with services.engine.connect() as conn:
            digests = images_without_thumbnail(conn, after, PAGE)
        if not digests:
            return done
        after = digests[-1]
        made: dict[str, bytes] = {}
        for digest in digests:
            with services.engine.connect() as conn:
                data = services.uploads.load(conn, digest)
            if data is None:
                done.not_kept += 1
                continue
            picture = load_rgb(data, THUMBNAIL_MAX_SIDE)
            if picture is None:
                done.undecodable += 1
                continue
            made[digest] = stored_thumbnail(picture)
        if made:
            with write_transaction(services.engine) as conn:
                store_thumbnails(conn, STORED_THUMBNAIL_MEDIA_TYPE, made)
            done.made += len(made)
