"""Rate limits: 429 problem+json with Retry-After per key, per integration and per client
address on register, search, verify and inbound; failed key lookups stop before the database;
X-Forwarded-For only with trusted_proxies; Redis down leaves requests unlimited."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from datetime import UTC, datetime

from sqlalchemy import event
from standardwebhooks import Webhook

from service.settings import Rate
from tests.e2e.conftest import CLOSED_REDIS_URL
from tests.e2e.test_api_errors import assert_problem
from tests.support.images import png_bytes

PER_MINUTE = 60


def _limited(response) -> int:
    """Assert a 429 rate-limited problem; its Retry-After in seconds."""
    body = assert_problem(response, 429, "rate-limited")
    assert "retry in" in body["detail"]
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= PER_MINUTE
    return retry


def _digest(api, n: int, auth: dict[str, str] | None = None):
    sha = hashlib.sha256(str(n).encode()).hexdigest()
    return api.client.post("/v1/stamps", json={"sha256": sha}, headers=auth or api.auth)


def _search(api, address: str = "127.0.0.1", headers: dict[str, str] | None = None):
    return api.client.post("/v1/search", data={"image": (io.BytesIO(png_bytes(8, 8)), "a.png")},
                           content_type="multipart/form-data", headers=headers or {},
                           environ_base={"REMOTE_ADDR": address})


def test_registration_is_limited_per_key(make_api) -> None:
    api = make_api(rate_limit_register_per_key=Rate(3, PER_MINUTE))
    for n in range(3):
        assert _digest(api, n).status_code == 202
    _limited(_digest(api, 3))
    assert api.counts()["receipts"] == 3  # refused before any work
    _, other = api.new_key()
    assert _digest(api, 4, {"Authorization": f"Bearer {other}"}).status_code == 202


def test_anonymous_search_is_limited_per_address_and_a_key_has_its_own_limit(make_api) -> None:
    api = make_api(rate_limit_search_per_address=Rate(2, PER_MINUTE),
                   rate_limit_search_per_key=Rate(1, PER_MINUTE))
    assert [_search(api).status_code for _ in range(2)] == [200, 200]
    _limited(_search(api))
    assert _search(api, "192.0.2.7").status_code == 200  # another address: its own count
    # IPv6 hosts are counted by their /64: another address in it shares the count.
    assert [_search(api, f"2001:db8::{n}").status_code for n in (1, 2)] == [200, 200]
    _limited(_search(api, "2001:db8::ffff"))
    assert _search(api, "2001:db8:0:1::1").status_code == 200
    keyed = {"Authorization": f"Bearer {api.secret}"}
    assert _search(api, "198.51.100.1", keyed).status_code == 200
    _limited(_search(api, "198.51.100.2", keyed))  # the key's limit, from any address


def test_anonymous_verify_is_limited_per_address(make_api) -> None:
    api = make_api(rate_limit_verify_per_address=Rate(2, PER_MINUTE))
    for _ in range(2):
        answer = api.client.post("/v1/verify", json={"receipt_id": "rcp_nope"})
        assert_problem(answer, 404, "not-found")
    _limited(api.client.post("/v1/verify", json={"receipt_id": "rcp_nope"}))


def test_forwarded_addresses_count_only_behind_trusted_proxies(make_api) -> None:
    spoofing = make_api(rate_limit_search_per_address=Rate(1, PER_MINUTE))
    assert _search(spoofing, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 200
    # Without trusted proxies the header is anyone's to write: it does not escape the limit.
    _limited(_search(spoofing, headers={"X-Forwarded-For": "203.0.113.2"}))

    proxied = make_api(rate_limit_search_per_address=Rate(1, PER_MINUTE), trusted_proxies=1)
    assert _search(proxied, headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 200
    _limited(_search(proxied, headers={"X-Forwarded-For": "203.0.113.10"}))
    assert _search(proxied, headers={"X-Forwarded-For": "203.0.113.11"}).status_code == 200


def test_failed_key_lookups_are_counted_per_address_and_then_skip_the_database(make_api) -> None:
    api = make_api(rate_limit_auth_failures_per_address=Rate(3, PER_MINUTE))
    queries: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        queries.append(statement)

    event.listen(api.services.engine, "before_cursor_execute", record)
    try:
        assert api.client.get("/v1/stamps", headers=api.auth).status_code == 200  # cached now
        for n in range(3):
            bad = {"Authorization": f"Bearer cs_guess{n}"}
            assert_problem(api.client.get("/v1/stamps", headers=bad), 401, "unauthorized")
        queries.clear()
        for n in range(3, 6):
            bad = {"Authorization": f"Bearer cs_guess{n}"}
            _limited(api.client.get("/v1/stamps", headers=bad))
        assert queries == []  # no lookup reached the database
    finally:
        event.remove(api.services.engine, "before_cursor_execute", record)
    assert api.client.get("/v1/stamps", headers=api.auth).status_code == 200  # still cached
    elsewhere = api.client.get("/v1/stamps", headers={"Authorization": "Bearer cs_guess9"},
                               environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert_problem(elsewhere, 401, "unauthorized")


def _hook_message(n: int) -> bytes:
    return json.dumps({"type": "post.published", "data": {
        "image": {"base64": base64.b64encode(png_bytes(4, 4)).decode()},
        "publication": {"platform": "blog", "post_url": f"https://blog.example/{n}",
                        "published_at": "2026-12-01T00:00:00Z"}}}).encode()


def _signed(secret: str, body: bytes, msg_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode())}


def test_inbound_is_limited_per_integration_once_signed_and_per_address(make_api) -> None:
    api = make_api(rate_limit_inbound_per_integration=Rate(2, PER_MINUTE),
                   rate_limit_inbound_per_address=Rate(7, PER_MINUTE))
    created = api.client.post("/v1/integrations", json={"name": "blog"}, headers=api.auth)
    url, secret = created.get_json()["url"], created.get_json()["secret"]
    forged = "whsec_" + base64.b64encode(b"f" * 32).decode()
    for n in range(3):  # wrongly signed messages do not use up the integration's limit
        body = _hook_message(n)
        answer = api.client.post(url, data=body, headers=_signed(forged, body, f"x{n}"),
                                 content_type="application/json")
        assert_problem(answer, 401, "invalid-signature")
    for n in range(2):
        body = _hook_message(n)
        answer = api.client.post(url, data=body, headers=_signed(secret, body, f"m{n}"),
                                 content_type="application/json")
        assert answer.status_code == 202, answer.get_json()
    body = _hook_message(2)
    _limited(api.client.post(url, data=body, headers=_signed(secret, body, "m2"),
                             content_type="application/json"))
    # Every request of the address counted (7 so far), before the integration is looked up.
    assert_problem(api.client.post("/v1/hooks/itg_unknown", data=b"{}"), 404, "not-found")
    _limited(api.client.post("/v1/hooks/itg_unknown", data=b"{}"))


def test_redis_down_leaves_requests_unlimited_and_says_so(make_api, caplog) -> None:
    api = make_api(redis_url=CLOSED_REDIS_URL, rate_limit_register_per_key=Rate(1, PER_MINUTE),
                   rate_limit_register_per_address=Rate(1, PER_MINUTE))
    with caplog.at_level(logging.WARNING, logger="service.usecases.rate_limits"):
        assert [_digest(api, n).status_code for n in range(3)] == [202, 202, 202]
    warnings = [r for r in caplog.records if r.name == "service.usecases.rate_limits"]
    assert len(warnings) == 1 and "rate limits are off" in warnings[0].getMessage()
