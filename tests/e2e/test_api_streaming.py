"""A large upload is hashed as a stream: memory stays far below the upload's size."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest

UPLOAD_BYTES = 20 * 1024 * 1024
PEAK_LIMIT_BYTES = 4 * 1024 * 1024  # chunks, the in-memory part of the spool, request objects


@pytest.fixture
def big_body(tmp_path):
    """A multipart body on disk: a 20 MiB random `image` part, and its SHA-256."""
    boundary = "chronoseal-test-boundary"
    path = tmp_path / "body.bin"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
                  f'{{"prompt": "big"}}\r\n'.encode())
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                  f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
        for _ in range(UPLOAD_BYTES // (1024 * 1024)):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            out.write(chunk)
        out.write(f"\r\n--{boundary}--\r\n".encode())
    return path, boundary, digest.hexdigest()


def test_20_mib_upload_keeps_memory_bounded(make_api, big_body):
    api = make_api()  # the default limit: 50 MiB
    path, boundary, sha256 = big_body
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
    assert response.status_code == 202, response.get_data(as_text=True)
    assert peak < PEAK_LIMIT_BYTES, f"peak {peak} bytes for a {UPLOAD_BYTES}-byte upload"
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["manifest"]["image"] == {"sha256": sha256, "size": UPLOAD_BYTES}
