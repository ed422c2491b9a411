"""Images registered by posting tools (inbound post.published) are hashed like uploads."""

from __future__ import annotations

import base64

from service.storage.perceptual import hashes_of, receipts_to_hash
from service.webhooks.inbound import register
from tests.integration.test_webhooks_inbound import OPTIONS, _accepted, _message
from tests.support.pictures import picture_png
from service.usecases.hashing import hash_receipt_image


def test_an_inbound_image_is_kept_then_hashed(db_engine, make_api_key) -> None:
    image = picture_png(12)
    _, _, message = _accepted(
        db_engine, make_api_key, _message({"base64": base64.b64encode(image).decode()}))
    assert register(db_engine, message.id, OPTIONS) == "rcp_TEST"
    with db_engine.connect() as conn:
        receipt_sha = conn.exec_driver_sql(
            "SELECT image_sha256 FROM receipts WHERE id = 'rcp_TEST'").scalar()
        assert OPTIONS.uploads.load(conn, receipt_sha) == image
        assert receipts_to_hash(conn, 10) == ["rcp_TEST"]
    assert hash_receipt_image(db_engine, OPTIONS.uploads, "rcp_TEST", keep_images=False) > 1
    with db_engine.connect() as conn:
        assert len(hashes_of(conn, "rcp_TEST")) > 1
        assert OPTIONS.uploads.load(conn, receipt_sha) is None
        assert receipts_to_hash(conn, 10) == []
