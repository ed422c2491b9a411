"""Images registered by posting tools (inbound post.published) are hashed like uploads."""

from __future__ import annotations

import base64
import json

from service.evidence.hashing import UNDECODABLE
from service.storage.perceptual import hashes_of, receipts_to_hash
from service.usecases.hashing import hash_receipt_image
from tests.integration.test_webhooks_inbound import _accepted, _message, _register
from tests.support.pictures import picture_png


def test_an_inbound_image_is_kept_then_hashed(services, make_api_key) -> None:
    image = picture_png(12)
    engine, uploads = services.engine, services.uploads
    _, _, message = _accepted(
        engine, make_api_key, _message({"base64": base64.b64encode(image).decode()}))
    assert _register(services, message.id) == "rcp_TEST"
    with engine.connect() as conn:
        receipt_sha = conn.exec_driver_sql(
            "SELECT image_sha256 FROM receipts WHERE id = 'rcp_TEST'").scalar()
        assert uploads.load(conn, receipt_sha) == image
        assert receipts_to_hash(conn, 10) == ["rcp_TEST"]
    assert hash_receipt_image(engine, uploads, "rcp_TEST", keep_images=False) > 1
    with engine.connect() as conn:
        assert len(hashes_of(conn, "rcp_TEST")) > 1
        assert uploads.load(conn, receipt_sha) is None
        assert receipts_to_hash(conn, 10) == []


def test_undecodable_inbound_bytes_are_registered_but_not_kept(services, make_api_key) -> None:
    _, _, message = _accepted(services.engine, make_api_key,
                              _message({"base64": base64.b64encode(b"not an image").decode()}))
    assert _register(services, message.id) == "rcp_TEST"
    with services.engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == []  # nothing to hash: as for an upload
        warnings = conn.exec_driver_sql(
            "SELECT warnings FROM receipts WHERE id = 'rcp_TEST'").scalar()
    assert UNDECODABLE in json.loads(warnings)
