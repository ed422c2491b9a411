"""Bearer keys: 401 for missing, unknown or revoked keys; a key sees only its own receipts."""

from __future__ import annotations

import pytest

from tests.e2e.test_api_errors import assert_problem
from tests.support.images import png_bytes

ROUTES = ["/v1/stamps", "/v1/stamps/{id}", "/v1/stamps/{id}/tokens",
          "/v1/stamps/{id}/tokens/builtin.tsr", "/v1/stamps/{id}/bundle"]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz",
                                    "Bearer cs_not-a-real-key", "Bearer " + "k" * 300])
def test_missing_or_bad_key_is_401(api, header):
    before = api.counts()
    headers = {} if header is None else {"Authorization": header}
    response = api.client.post("/v1/stamps", headers=headers, json={"sha256": "ab" * 32})
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "cs_" not in str(body)  # the offered key is never echoed
    assert api.counts() == before


def test_every_stamps_route_needs_a_key(api):
    receipt_id = api.post_image(png_bytes()).get_json()["id"]
    for route in ROUTES:
        response = api.client.get(route.format(id=receipt_id))
        assert_problem(response, 401, "unauthorized")


def test_revoked_key_is_401(api):
    assert api.client.get("/v1/stamps", headers=api.auth).status_code == 200
    api.revoke(api.key_id)
    response = api.client.get("/v1/stamps", headers=api.auth)
    assert_problem(response, 401, "unauthorized")


def test_other_keys_receipt_is_404(api):
    receipt_id = api.post_image(png_bytes()).get_json()["id"]
    _, other = api.new_key()
    headers = {"Authorization": f"Bearer {other}"}
    for route in ROUTES[1:]:
        assert_problem(api.client.get(route.format(id=receipt_id), headers=headers),
                       404, "not-found")
    assert api.client.get("/v1/stamps", headers=headers).get_json()["items"] == []


def test_unknown_receipt_is_404(api):
    assert_problem(api.client.get("/v1/stamps/rcp_nope", headers=api.auth), 404, "not-found")


def test_public_routes_need_no_key(api):
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/openapi.json").status_code == 200
