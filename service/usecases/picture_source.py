"""The picture of a receipt's image for the pages and the exhibit: the kept upload while it is
kept, else the thumbnail the hashing worker stored (kept after the upload is dropped).

Never for content credentials (usecases.credentials): those sign the real bytes, which only
the kept upload is.
"""

from __future__ import annotations

from service.storage.receipts import Receipt
from service.storage.thumbnails import load_thumbnail
from service.wiring import Services


def picture_of(services: Services, receipt: Receipt) -> bytes | None:
    """The image's bytes or its stored thumbnail; None for a hash-only receipt or no picture."""
    if receipt.image_size is None:
        return None  # digest only: no picture was ever sent
    with services.engine.connect() as conn:
        kept = services.uploads.load(conn, receipt.image_sha256)
        if kept is not None:
            return kept
        small = load_thumbnail(conn, receipt.image_sha256)
    return small.data if small is not None else None
