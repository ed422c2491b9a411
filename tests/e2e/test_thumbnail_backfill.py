"""`chronoseal db thumbnails`: receipts hashed before thumbnails were stored get one from their
kept upload; images no longer kept are counted and left; a second run has nothing to make."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

from PIL import Image
from sqlalchemy import delete

from service.storage.tables import thumbnails
from service.storage.thumbnails import load_thumbnail
from service.usecases.thumbnails import Backfilled, backfill_thumbnails
from tests.e2e.conftest import Api
from tests.support.pictures import picture_png


def test_missing_thumbnails_are_made_from_kept_uploads(
        make_worker_api: Callable[..., Api]) -> None:
    api: Any = make_worker_api(keep_images=True)
    pngs = [picture_png(seed=n, width=640, height=480) for n in range(3)]
    digests = []
    for data in pngs:
        answer = api.post_image(data)
        assert answer.status_code == 202, answer.get_json()
        digests.append(hashlib.sha256(data).hexdigest())
    api.run()  # hashed: each gets its thumbnail
    with api.services.engine.connect() as conn:
        assert all(load_thumbnail(conn, d) is not None for d in digests)
        # As before thumbnails were stored: two have none, and one of those lost its upload.
        conn.execute(delete(thumbnails).where(thumbnails.c.image_sha256.in_(digests[:2])))
        api.services.uploads.drop(conn, digests[1])
        conn.commit()

    assert backfill_thumbnails(api.services) == Backfilled(made=1, not_kept=1, undecodable=0)
    with api.services.engine.connect() as conn:
        made = load_thumbnail(conn, digests[0])
        assert load_thumbnail(conn, digests[1]) is None  # nothing to make it from
    assert made is not None and made.media_type == "image/jpeg"
    with Image.open(io.BytesIO(made.data)) as picture:
        assert picture.format == "JPEG" and max(picture.size) == 384
        assert picture.size == (384, 288)  # the image's proportions

    assert backfill_thumbnails(api.services) == Backfilled(made=0, not_kept=1, undecodable=0)
