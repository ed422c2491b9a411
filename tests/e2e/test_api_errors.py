"""Every bad POST /v1/stamps answers its problem type and stores nothing."""

from __future__ import annotations

import io
import json

import pytest

from service.web.problems import PROBLEM_MEDIA_TYPE
from tests.e2e.conftest import SMALL_UPLOAD_LIMIT
from tests.support.images import png_bytes

PROBLEM = "urn:chronoseal:problem:"


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    body = response.get_json()
    assert body["type"] == PROBLEM + slug and body["status"] == status and body["title"]
    return body


@pytest.fixture
def unchanged(api):
    """Yields; then checks that no table gained or lost a row."""
    before = api.counts()
    yield
    assert api.counts() == before


def test_oversize_upload_is_413(api, unchanged):
    response = api.post_image(b"\x89PNG\r\n\x1a\n" + bytes(SMALL_UPLOAD_LIMIT))
    assert_problem(response, 413, "payload-too-large")


def test_upload_at_the_limit_is_accepted(api):
    assert api.post_image(bytes(SMALL_UPLOAD_LIMIT)).status_code == 202


def test_body_over_max_content_length_is_413(api, unchanged):
    body = b"x" * (SMALL_UPLOAD_LIMIT + 2 * 1024 * 1024)
    response = api.client.post("/v1/stamps", data=body, headers=api.auth,
                               content_type="multipart/form-data; boundary=b")
    assert_problem(response, 413, "payload-too-large")
    limit = api.app.config["MAX_CONTENT_LENGTH"]
    assert response.get_json()["detail"] == f"the request body exceeds {limit} bytes"


@pytest.mark.parametrize("metadata", ['["a", "list"]', '"a string"', "{not json", "42", "null"])
def test_metadata_not_an_object_is_400(api, unchanged, metadata):
    response = api.post_image(png_bytes(), metadata=metadata)
    assert_problem(response, 400, "invalid-metadata")


@pytest.mark.parametrize("metadata", [["a"], "text", 1])
def test_json_metadata_not_an_object_is_400(api, unchanged, metadata):
    response = api.client.post("/v1/stamps", headers=api.auth,
                               json={"sha256": "ab" * 32, "metadata": metadata})
    assert_problem(response, 400, "invalid-metadata")


def test_deeply_nested_metadata_is_400(api, unchanged):
    response = api.post_image(png_bytes(), metadata="[" * 50_000 + "]" * 50_000)
    assert_problem(response, 400, "invalid-metadata")
    nested = '{"a":' * 100 + "1" + "}" * 100
    deep = api.post_image(png_bytes(), metadata=nested)
    assert_problem(deep, 400, "metadata-out-of-bounds")
    assert "nested deeper than" in deep.get_json()["detail"]  # the bound, stated


@pytest.mark.parametrize("digest", ["ab" * 31 + "a", "zz" * 32, "ab" * 33, "", 12, None])
def test_bad_digest_is_400(api, unchanged, digest):
    body = {"sha256": digest} if digest is not None else {"metadata": {}}
    response = api.client.post("/v1/stamps", headers=api.auth, json=body)
    assert_problem(response, 400, "invalid-digest")


@pytest.mark.parametrize("url", ["http://", "https://example.com/" + "a" * 2100, "not a url",
                                 "https:///no-host", " https://example.com/"])
def test_bad_callback_url_is_400(api, unchanged, url):
    response = api.post_image(png_bytes(), callback_url=url)
    assert_problem(response, 400, "invalid-callback-url")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "javascript:alert(1)",
                                 "file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL"])
def test_callback_url_of_another_scheme_is_refused(api, unchanged, url):
    """Issue 11 §8: the scheme is checked at registration, refused as the SSRF guard refuses."""
    response = api.post_image(png_bytes(), callback_url=url)
    assert_problem(response, 400, "url-refused")


def test_good_callback_url_is_kept(api):
    response = api.post_image(png_bytes(), callback_url="https://hooks.example/cb?x=1")
    assert response.status_code == 202


@pytest.mark.parametrize(("fields", "slug"), [
    ({"external_id": "x" * 201}, "invalid-field"),
    ({"public": "maybe"}, "invalid-field"),
    ({"unknown": "1"}, "invalid-field"),
])
def test_bad_form_fields_are_400(api, unchanged, fields, slug):
    assert_problem(api.post_image(png_bytes(), **fields), 400, slug)


def test_missing_image_part_is_400(api, unchanged):
    response = api.client.post("/v1/stamps", headers=api.auth, content_type="multipart/form-data",
                               data={"metadata": "{}"})
    assert_problem(response, 400, "invalid-field")


def test_repeated_image_part_is_400(api, unchanged):
    data = {"image": [(io.BytesIO(b"a"), "a.png"), (io.BytesIO(b"b"), "b.png")]}
    response = api.client.post("/v1/stamps", headers=api.auth, content_type="multipart/form-data",
                               data=data)
    assert_problem(response, 400, "invalid-field")


def test_truncated_multipart_is_400(api, unchanged):
    body = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\nabc'
    response = api.client.post("/v1/stamps", headers=api.auth, data=body,
                               content_type="multipart/form-data; boundary=b")
    assert_problem(response, 400, "invalid-field")


@pytest.mark.parametrize("body", [b"{", b"[1]", b'{"sha256": "' + b"ab" * 32 + b'", "x": 1}'])
def test_bad_json_bodies_are_400(api, unchanged, body):
    response = api.client.post("/v1/stamps", headers=api.auth, data=body,
                               content_type="application/json")
    assert_problem(response, 400, "invalid-field")


def test_other_content_type_is_415(api, unchanged):
    response = api.client.post("/v1/stamps", headers=api.auth, data=b"abc",
                               content_type="image/png")
    assert_problem(response, 415, "unsupported-media-type")


def test_idempotency_conflict_is_409(api):
    headers = {"Idempotency-Key": "k-1"}
    assert api.post_image(png_bytes(), headers, metadata=json.dumps({"a": 1})).status_code == 202
    before = api.counts()
    conflict = api.post_image(png_bytes(), headers, metadata=json.dumps({"a": 2}))
    assert_problem(conflict, 409, "idempotency-conflict")
    other_image = api.post_image(png_bytes(color=(0, 0, 0)), headers, metadata='{"a": 1}')
    assert_problem(other_image, 409, "idempotency-conflict")
    assert api.counts() == before


def test_bad_idempotency_key_is_400(api, unchanged):
    response = api.post_image(png_bytes(), {"Idempotency-Key": "k" * 256})
    assert_problem(response, 400, "invalid-field")


def test_unknown_route_and_method_are_problems(api):
    assert_problem(api.client.get("/v1/nothing"), 404, "not-found")
    response = api.client.delete("/v1/stamps", headers=api.auth)
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"]
