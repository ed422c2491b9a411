"""A large upload is hashed as a stream: memory stays far below the upload's size."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc

import pytest
from PIL import Image
from sqlalchemy import select

from service.storage.tables import image_uploads
from service.storage.uploads import DatabaseUploads

UPLOAD_BYTES = 20 * 1024 * 1024
PEAK_LIMIT_BYTES = 4 * 1024 * 1024  # chunks, the in-memory part of the spool, request objects


def _write_body(path, boundary: str, chunks) -> str:
    """A multipart body on disk with `chunks` as its `image` part; returns their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
                  f'{{"prompt": "big"}}\r\n'.encode())
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                  f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
        out.write(f"\r\n--{boundary}--\r\n".encode())
    return digest.hexdigest()


@pytest.fixture
def big_body(tmp_path):
    """A multipart body on disk: a 20 MiB random `image` part, and its SHA-256."""
    boundary = "chronoseal-test-boundary"
    path = tmp_path / "body.bin"
    chunks = (os.urandom(1024 * 1024) for _ in range(UPLOAD_BYTES // (1024 * 1024)))
    return path, boundary, _write_body(path, boundary, chunks)


@pytest.fixture
def big_png_body(tmp_path):
    """A multipart body whose `image` is a decodable ~20 MiB PNG (noise, stored uncompressed)."""
    side = 2600  # 2600 x 2600 RGB: about 20 MiB of pixels
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    png = io.BytesIO()
    image.save(png, "PNG", compress_level=0)
    data = png.getvalue()
    boundary = "chronoseal-test-boundary"
    path = tmp_path / "png-body.bin"
    return path, boundary, _write_body(path, boundary, [data]), len(data)


def _post_measuring_peak(api, path, boundary: str):
    """POST the body at `path` as multipart; returns the response and Python's peak memory."""
    with path.open("rb") as stream:
        tracemalloc.start()
        try:
            response = api.client.post(
                "/v1/stamps", input_stream=stream, content_length=path.stat().st_size,
                content_type=f"multipart/form-data; boundary={boundary}", headers=api.auth,
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return response, peak


def test_20_mib_upload_keeps_memory_bounded(make_api, big_body):
    api = make_api()  # the default limit: 50 MiB
    path, boundary, sha256 = big_body
    response, peak = _post_measuring_peak(api, path, boundary)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert peak < PEAK_LIMIT_BYTES, f"peak {peak} bytes for a {UPLOAD_BYTES}-byte upload"
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["manifest"]["image"] == {"sha256": sha256, "size": UPLOAD_BYTES}


def test_a_large_decodable_image_is_kept_for_hashing_without_holding_it_in_memory(
        make_api, big_png_body):
    """Images are kept for the perceptual-hash worker streamed from the spool, in chunks."""
    api = make_api()
    path, boundary, sha256, size = big_png_body
    response, peak = _post_measuring_peak(api, path, boundary)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert peak < PEAK_LIMIT_BYTES, f"peak {peak} bytes for a {size}-byte image"
    uploads = api.services.uploads
    with api.services.engine.connect() as conn:
        assert hashlib.sha256(uploads.load(conn, sha256) or b"").hexdigest() == sha256
        if isinstance(uploads, DatabaseUploads):  # PostgreSQL's default: rows of 1 MiB
            chunks = conn.execute(select(image_uploads.c.chunk)
                                  .where(image_uploads.c.image_sha256 == sha256)).scalars().all()
            assert len(chunks) > 1  # kept in pieces, not as one value
