"""Bearer keys: 401 for missing, unknown or revoked keys; a key sees only its own receipts."""

from __future__ import annotations

import time

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


def test_revoked_key_is_401_at_once_without_the_key_cache(make_api):
    api = make_api(auth_cache_s=0)
    assert api.client.get("/v1/stamps", headers=api.auth).status_code == 200
    api.revoke(api.key_id)
    response = api.client.get("/v1/stamps", headers=api.auth)
    assert_problem(response, 401, "unauthorized")


def test_revoked_key_is_401_once_the_cache_forgets_it(make_api):
    ttl_s = 0.3
    api = make_api(auth_cache_s=ttl_s)
    assert api.client.get("/v1/stamps", headers=api.auth).status_code == 200  # remembered
    api.revoke(api.key_id)
    assert api.client.get("/v1/stamps", headers=api.auth).status_code == 200  # the stated delay
    time.sleep(ttl_s + 0.05)
    assert_problem(api.client.get("/v1/stamps", headers=api.auth), 401, "unauthorized")


def test_unknown_keys_are_never_remembered(api):
    _, secret = api.new_key("fresh")  # created after the app started: works at once
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/stamps", headers=headers).status_code == 200
    bogus = {"Authorization": "Bearer cs_not_a_key"}
    for _ in range(2):
        assert_problem(api.client.get("/v1/stamps", headers=bogus), 401, "unauthorized")


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
    assert api.client.get("/healthz").status_code == 503  # a problem about workers, not a 401
    assert api.client.get("/openapi.json").status_code == 200
