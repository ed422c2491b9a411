"""Issue 15: with keep_images off the hashing worker drops each upload, but first stores a
bounded JPEG thumbnail with the hashes; the thumbnail route, the repost comparison and the
certificate show it. A digest-only receipt still gets the placeholder."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from service.evidence.thumbnail import THUMBNAIL_MAX_SIDE
from service.storage.receipts import get_receipt
from service.storage.thumbnails import load_thumbnail
from tests.e2e.test_pages import csrf, sign_in, upload
from tests.support.alterations import add_watermark, encode
from tests.support.pictures import picture, picture_png

MAX_THUMBNAIL_BYTES = 60_000  # "a few tens of KB"


def test_the_thumbnail_outlives_the_dropped_upload(worker_api: Any) -> None:
    assert not worker_api.services.settings.keep_images
    sign_in(worker_api)
    made = upload(worker_api, (picture_png(41, 1200, 800), "big.png"), public=True, json=True)
    receipt_id = made.json["receipts"][0]["id"]
    worker_api.run()
    services = worker_api.services
    with services.engine.connect() as conn:
        receipt = get_receipt(conn, receipt_id, None)
        assert receipt is not None and receipt.status == "stamped"
        assert services.uploads.load(conn, receipt.image_sha256) is None  # dropped
        stored = load_thumbnail(conn, receipt.image_sha256)
    assert stored is not None and stored.media_type == "image/jpeg"
    assert len(stored.data) < MAX_THUMBNAIL_BYTES
    small = Image.open(io.BytesIO(stored.data))
    assert small.format == "JPEG" and max(small.size) == THUMBNAIL_MAX_SIDE

    thumb = worker_api.app.test_client().get(f"/thumbs/{receipt_id}.png")
    assert thumb.mimetype == "image/png" and thumb.data.startswith(b"\x89PNG")

    client = worker_api.client
    tampered = encode(add_watermark(picture(41, 1200, 800)), "JPEG", quality=80)
    verdict = client.post("/", content_type="multipart/form-data",
                          data={"csrf": csrf(client), "receipt_id": receipt_id,
                                "image": (io.BytesIO(tampered), "copy.jpg")})
    assert "Not valid" in verdict.text
    assert "No picture of the registered image is kept" not in verdict.text
    assert verdict.text.count("data:image/png;base64,") == 3  # original, copy, difference

    html = client.get(f"/r/{receipt_id}/certificate.html")
    assert html.status_code == 200
    assert '<img src="data:image/jpeg;base64,' in html.text  # the exhibit's picture
    assert "no image stored" not in html.text


def test_a_digest_only_receipt_gets_the_placeholder(worker_api: Any) -> None:
    sign_in(worker_api)
    made = worker_api.client.post("/v1/stamps", headers=worker_api.auth,
                                  json={"sha256": "ab" * 32, "metadata": {}})
    assert made.status_code == 202, made.text
    receipt_id = made.get_json()["id"]
    worker_api.run()
    thumb = worker_api.client.get(f"/thumbs/{receipt_id}.png")
    assert thumb.status_code == 200 and thumb.mimetype == "image/svg+xml"
