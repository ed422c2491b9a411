"""Webhooks through the API: endpoints, callback secret, delivery log, integrations, and
inbound post.published messages, end to end with a real RQ worker (in-process, burst), a real
built-in TSA over HTTP, real Redis, and a real HTTP receiver for the callbacks."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from service.storage.tables import inbound_messages, receipts, webhook_endpoints
from service.webhooks.inbound import max_body_bytes
from tests.e2e.conftest import LOOPBACK
from tests.support.images import png_bytes
from tests.support.records import png_texts
from tests.support.webhook_receiver import self_signed_tls, webhook_receiver


def _rows(api, table) -> int:
    with api.services.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _json(api, path: str, body: dict, key: dict | None = None):
    return api.client.post(path, data=json.dumps(body), content_type="application/json",
                           headers=key or api.auth)


def _integration(api) -> tuple[str, str, str]:
    answer = _json(api, "/v1/integrations", {"name": "blog"})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    return body["id"], body["url"], body["secret"]


def _post_message(image: dict, **data) -> bytes:
    message = {"type": "post.published", "timestamp": "2026-11-28T21:00:00Z", "data": {
        "image": image, "generation": {"prompt": "a lighthouse", "seed": "42"},
        "publication": {"platform": "mastodon", "post_url": "https://social.example/@a/1",
                        "published_at": "2026-11-28T20:59:00Z"}, **data}}
    return json.dumps(message).encode()


def _signed(secret: str, body: bytes, msg_id: str = "evt_1",
            when: datetime | None = None) -> dict[str, str]:
    moment = when or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, moment, body.decode())}


def _hook(api, url: str, body: bytes, headers: dict[str, str]):
    return api.client.post(url, data=body, content_type="application/json", headers=headers)


# --- management routes -----------------------------------------------------------------------

def test_endpoints_create_list_rotate_delete(make_api) -> None:
    api = make_api(webhook_allowlist=LOOPBACK)
    created = _json(api, "/v1/webhooks/endpoints",
                    {"url": "http://127.0.0.1:9/hook", "events": ["receipt.stamped"]})
    assert created.status_code == 201
    endpoint = created.get_json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["id"].startswith("whe_")
    assert endpoint["created_at"].endswith("Z")  # RFC 3339 UTC, as everywhere in the API
    listed = api.client.get("/v1/webhooks/endpoints", headers=api.auth).get_json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    rotated = api.client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/rotate",
                              headers=api.auth).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    _, other = api.new_key()
    other_auth = {"Authorization": f"Bearer {other}"}
    assert api.client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}",
                             headers=other_auth).status_code == 404
    assert api.client.get("/v1/webhooks/endpoints", headers=other_auth).get_json()["items"] == []
    assert api.client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}",
                             headers=api.auth).status_code == 204
    assert api.client.get("/v1/webhooks/endpoints", headers=api.auth).get_json()["items"] == []


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://10.0.0.1/hook",
                                 "http://169.254.169.254/", "http://[::1]/hook",
                                 "http://localhost/hook", "ftp://example.com/"])
def test_endpoint_urls_to_internal_addresses_are_refused(make_api, url: str) -> None:
    api = make_api()
    answer = _json(api, "/v1/webhooks/endpoints", {"url": url})
    assert answer.status_code == 400
    assert answer.get_json()["type"] == "urn:chronoseal:problem:url-refused"
    assert _rows(api, webhook_endpoints) == 0


def test_endpoint_fields_are_checked(make_api) -> None:
    api = make_api(webhook_allowlist=LOOPBACK)
    for body in ({"url": "http://127.0.0.1/x", "events": ["receipt.eaten"]},
                 {"url": "http://127.0.0.1/x", "events": []}, {"events": ["receipt.stamped"]}):
        assert _json(api, "/v1/webhooks/endpoints", body).status_code == 400
    assert api.client.post("/v1/webhooks/endpoints", data="[", content_type="application/json",
                           headers=api.auth).status_code == 400


def test_callback_secret_is_stable_until_rotated(make_api) -> None:
    api = make_api()
    first = api.client.get("/v1/webhooks/secret", headers=api.auth).get_json()["secret"]
    assert first.startswith("whsec_")
    assert api.client.get("/v1/webhooks/secret", headers=api.auth).get_json()["secret"] == first
    rotated = api.client.post("/v1/webhooks/secret/rotate", headers=api.auth).get_json()["secret"]
    assert rotated != first
    assert api.client.get("/v1/webhooks/secret").status_code == 401


def test_delivery_log_routes_check_their_input(make_api) -> None:
    api = make_api()
    assert api.client.get("/v1/webhooks/deliveries", headers=api.auth).get_json() == {"items": []}
    assert api.client.get("/v1/webhooks/deliveries?status=lost",
                          headers=api.auth).status_code == 400
    assert api.client.get("/v1/webhooks/deliveries?limit=0", headers=api.auth).status_code == 400
    assert api.client.post("/v1/webhooks/deliveries/msg_nope/redeliver",
                           headers=api.auth).status_code == 404


# --- inbound: refusals store nothing ---------------------------------------------------------

def _refused(api, url: str, body: bytes, headers: dict[str, str], status: int, slug: str):
    before = (_rows(api, inbound_messages), _rows(api, receipts))
    answer = _hook(api, url, body, headers)
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["type"] == f"urn:chronoseal:problem:{slug}"
    assert (_rows(api, inbound_messages), _rows(api, receipts)) == before


def test_inbound_refusals(make_api) -> None:
    api = make_api(max_upload_bytes=4096)
    _, url, secret = _integration(api)
    body = _post_message({"base64": base64.b64encode(b"x" * 100).decode()})
    good = _signed(secret, body)
    _refused(api, url, body, {**good, "webhook-signature": "v1,AAAA"}, 401, "invalid-signature")
    _refused(api, url, body, _signed("whsec_" + base64.b64encode(b"k" * 32).decode(), body),
             401, "invalid-signature")
    _refused(api, url, body, {k: v for k, v in good.items() if k != "webhook-signature"}, 401,
             "invalid-signature")
    stale = datetime.now(UTC) - timedelta(minutes=6)
    _refused(api, url, body, _signed(secret, body, when=stale), 401, "invalid-signature")
    ahead = datetime.now(UTC) + timedelta(minutes=6)
    _refused(api, url, body, _signed(secret, body, when=ahead), 401, "invalid-signature")
    big = _post_message({"base64": base64.b64encode(b"x" * 2_000_000).decode()})
    _refused(api, url, big, _signed(secret, big), 413, "payload-too-large")
    for private in ("https://127.0.0.1/a.png", "https://10.0.0.1/a.png",
                    "https://169.254.169.254/latest", "https://[::1]/a.png",
                    "https://localhost/a.png", "http://93.184.216.34/a.png"):
        msg = _post_message({"url": private})
        _refused(api, url, msg, _signed(secret, msg, msg_id=private), 400, "url-refused")
    bad = json.dumps({"type": "post.deleted", "data": {}}).encode()
    _refused(api, url, bad, _signed(secret, bad), 400, "bad-request")
    _refused(api, "/v1/hooks/itg_unknown", body, good, 404, "not-found")
    api.revoke(api.key_id)  # a revoked key's integrations stop too
    _refused(api, url, body, good, 404, "not-found")


def test_inbound_oversized_image_in_limit_body_is_refused(make_api) -> None:
    api = make_api(max_upload_bytes=4096)
    _, url, secret = _integration(api)
    body = _post_message({"base64": base64.b64encode(b"x" * 5000).decode()})
    _refused(api, url, body, _signed(secret, body), 413, "payload-too-large")


class _Counted(io.BytesIO):
    """A request body whose position tells how many bytes the server read of it."""

    @property
    def taken(self) -> int:
        return self.tell()


def _hook_stream(api, url: str, stream: _Counted, headers: dict[str, str], chunked: bool):
    """POST `stream` as the body: with its Content-Length, or chunked (no length)."""
    extra = {"Transfer-Encoding": "chunked"} if chunked else {}
    return api.client.post(url, input_stream=stream, content_type="application/json",
                           headers={**headers, **extra},
                           environ_overrides={"wsgi.input_terminated": True} if chunked else {})


@pytest.mark.parametrize("chunked", [False, True])
def test_inbound_headers_are_checked_before_the_body_is_read(make_api, chunked) -> None:
    api = make_api(max_upload_bytes=4096)
    _, url, secret = _integration(api)
    body = _post_message({"base64": base64.b64encode(b"x" * 3000).decode()})
    good = _signed(secret, body)
    stale = _signed(secret, body, when=datetime.now(UTC) - timedelta(minutes=6))
    for headers in ({}, {k: v for k, v in good.items() if k != "webhook-signature"},
                    {**good, "webhook-signature": "v1,not-base64"}, stale,
                    {**good, "webhook-timestamp": "soon"}):
        stream = _Counted(body)
        answer = _hook_stream(api, url, stream, headers, chunked)
        assert answer.status_code == 401, answer.get_json()
        assert answer.get_json()["type"] == "urn:chronoseal:problem:invalid-signature"
        assert stream.taken == 0, headers  # refused on its headers alone
    stream = _Counted(body)
    assert _hook_stream(api, url, stream, good, chunked).status_code == 202
    assert stream.taken == len(body)


@pytest.mark.parametrize("chunked", [False, True])
def test_inbound_body_over_the_limit_is_413_however_it_is_sent(make_api, chunked) -> None:
    api = make_api(max_upload_bytes=4096)
    _, url, secret = _integration(api)
    limit = max_body_bytes(4096)
    body = _post_message({"base64": "QUFB"}, external_id="e" * 10) + b" " * limit  # JSON + pad
    before = (_rows(api, inbound_messages), _rows(api, receipts))
    answer = _hook_stream(api, url, _Counted(body), _signed(secret, body), chunked)
    assert answer.status_code == 413, answer.get_json()
    assert answer.get_json()["type"] == "urn:chronoseal:problem:payload-too-large"
    assert (_rows(api, inbound_messages), _rows(api, receipts)) == before
    fits = body[:limit]  # the same message, padded to exactly the limit, is accepted
    assert _hook_stream(api, url, _Counted(fits), _signed(secret, fits, "evt_fits"),
                        chunked).status_code == 202


# --- inbound and outbound, end to end --------------------------------------------------------

def test_inbound_post_is_registered_stamped_and_called_back(worker_api) -> None:
    api = worker_api
    image = png_bytes()
    with webhook_receiver() as rx:
        _, url, secret = _integration(api)
        endpoint = _json(api, "/v1/webhooks/endpoints", {"url": rx.url}).get_json()
        body = _post_message({"base64": base64.b64encode(image).decode()}, external_id="post-9")
        answer = _hook(api, url, body, _signed(secret, body, msg_id="evt_42"))
        assert answer.status_code == 202
        assert set(answer.get_json()) == {"id", "status", "links", "warnings"}  # "Accepted"
        receipt_id = answer.get_json()["id"]
        again = _hook(api, url, body, _signed(secret, body, msg_id="evt_42"))
        assert again.status_code == 202 and again.get_json()["id"] == receipt_id
        assert again.headers["Idempotent-Replayed"] == "true"
        assert _rows(api, inbound_messages) == 1
        api.run()
        stamped = api.client.get(f"/v1/stamps/{receipt_id}", headers=api.auth).get_json()
        assert stamped["status"] == "stamped"
        manifest = stamped["manifest"]
        assert manifest["publication"]["post_url"] == "https://social.example/@a/1"
        assert manifest["publication"]["published_at"] == "2026-11-28T20:59:00Z"
        assert manifest["image"]["size"] == len(image)
        assert manifest["external_id"] == "post-9"
        assert _rows(api, receipts) == 1
        # The replay after processing still answers the same receipt, and stores nothing.
        late = _hook(api, url, body, _signed(secret, body, msg_id="evt_42"))
        assert late.get_json()["id"] == receipt_id and _rows(api, receipts) == 1
    [request] = [r for r in rx.requests if r.method == "POST"]
    event = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert event["type"] == "receipt.stamped" and event["data"]["id"] == receipt_id
    log = api.client.get("/v1/webhooks/deliveries", headers=api.auth).get_json()["items"]
    assert [(d["status"], d["attempts"]) for d in log] == [("succeeded", 1)]
    assert log[0]["created_at"].endswith("Z") and log[0]["delivered_at"].endswith("Z")


A1111_PARAMETERS = ("a lighthouse at dusk\nNegative prompt: blurry\nSteps: 28, Sampler: DPM++ 2M, "
                    "CFG scale: 6.5, Seed: 1234567, Size: 8x8, Model hash: 0123abcd, "
                    "Model: dreamshaper_8")


def test_upload_and_inbound_post_of_one_file_give_the_same_image_and_record(worker_api) -> None:
    """One registration path: the record embedded in the file is read for inbound posts too."""
    api = worker_api
    image = png_texts({"parameters": A1111_PARAMETERS})
    record = {"prompt": "a lighthouse", "seed": "42"}  # the caller's, as both paths send it
    uploaded = api.post_image(image, metadata=json.dumps(record)).get_json()
    _, url, secret = _integration(api)
    body = json.dumps({"type": "post.published", "data": {
        "image": {"base64": base64.b64encode(image).decode()}, "generation": record,
        "publication": {"platform": "blog", "post_url": "https://b.example/1",
                        "published_at": "2026-12-01T10:00:00Z"}}}).encode()
    posted = _hook(api, url, body, _signed(secret, body, msg_id="evt_a1111")).get_json()
    api.run()
    manifests = [api.client.get(f"/v1/stamps/{r['id']}", headers=api.auth).get_json()["manifest"]
                 for r in (uploaded, posted)]
    by_upload, by_post = manifests
    assert by_upload["image"] == by_post["image"]
    assert by_upload["image"]["media_type"] == "image/png"
    assert by_upload["generation"] == by_post["generation"]
    assert by_post["generation"]["sampler"] == "DPM++ 2M"  # read from the file's chunk
    assert by_post["generation"]["steps"] == 28
    assert "publication" in by_post and "publication" not in by_upload


def test_callback_url_of_a_stamp_gets_receipt_stamped(worker_api) -> None:
    api = worker_api
    with webhook_receiver() as rx:
        answer = api.post_image(png_bytes(), callback_url=rx.url)
        receipt_id = answer.get_json()["id"]
        api.run()
    secret = api.client.get("/v1/webhooks/secret", headers=api.auth).get_json()["secret"]
    [request] = rx.requests
    event = Webhook(secret).verify(request.body, request.headers)
    assert (event["type"], event["data"]["id"]) == ("receipt.stamped", receipt_id)
    assert event["data"]["tokens"][0]["gen_time"].endswith("Z")


def test_failing_receiver_is_retried_then_failed_and_redelivered(worker_api) -> None:
    api = worker_api
    with webhook_receiver(statuses=[500]) as rx:
        api.post_image(png_bytes(), callback_url=rx.url)
        api.run()
        [delivery] = api.client.get("/v1/webhooks/deliveries?status=failed",
                                    headers=api.auth).get_json()["items"]
        assert delivery["attempts"] == 2 and delivery["last_status_code"] == 500
        rx.statuses[:] = [200]
        again = api.client.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver",
                                headers=api.auth)
        assert again.status_code == 202
        api.run()
    log = api.client.get("/v1/webhooks/deliveries", headers=api.auth).get_json()["items"]
    assert [d["status"] for d in log] == ["succeeded"]
    assert rx.answers == [500, 500, 200]
    detail = api.client.get(f"/v1/webhooks/deliveries/{delivery['id']}", headers=api.auth)
    history = detail.get_json()["attempts_log"]
    assert [(a["attempt"], a["status_code"]) for a in history] == [(1, 500), (2, 500), (1, 200)]
    assert history[0]["error"].startswith("HTTP 500") and history[-1]["error"] is None
    assert all(a["started_at"].endswith("Z") and a["duration_ms"] >= 0 for a in history)
    _, other = api.new_key()
    assert api.client.get(f"/v1/webhooks/deliveries/{delivery['id']}",
                          headers={"Authorization": f"Bearer {other}"}).status_code == 404


def test_messages_of_a_key_revoked_meanwhile_fail_instead_of_waiting(worker_api) -> None:
    api = worker_api
    _, url, secret = _integration(api)
    body = _post_message({"base64": base64.b64encode(png_bytes()).decode()})
    assert _hook(api, url, body, _signed(secret, body)).status_code == 202
    api.revoke(api.key_id)
    api.run()
    with api.services.engine.connect() as conn:
        status, error = conn.execute(select(inbound_messages.c.status,
                                            inbound_messages.c.error)).one()
    assert status == "failed" and "revoked" in error
    assert _rows(api, receipts) == 0


def test_inbound_image_url_that_cannot_be_fetched_fails_the_message(worker_api) -> None:
    """The job downloads over https from the checked address; nothing listens there."""
    api = worker_api
    _, url, secret = _integration(api)
    body = _post_message({"url": "https://127.0.0.1:9/a.png"})
    answer = _hook(api, url, body, _signed(secret, body))
    assert answer.status_code == 202  # allowlisted loopback passes the guard
    api.run()
    with api.services.engine.connect() as conn:
        status, error, attempts = conn.execute(select(
            inbound_messages.c.status, inbound_messages.c.error, inbound_messages.c.attempts)).one()
    # Retried on the (short) schedule, then failed with the reason.
    assert (status, attempts) == ("failed", 2) and "127.0.0.1" in error
    assert _rows(api, receipts) == 0


def test_integrations_cli_creates_a_hook_whose_secret_verifies(make_api, db_url, capsys,
                                                               monkeypatch) -> None:
    from service.cli import main

    api = make_api()
    # The CLI runs with the service's settings: its data directory holds the secrets key.
    monkeypatch.setenv("CHRONOSEAL_DATA_DIR", str(api.services.settings.data_path))
    assert main(["integrations", "--url", db_url, "create", "--name", "blog",
                 "--key", "key_unknown"]) == 1
    assert main(["integrations", "--url", db_url, "create", "--name", "blog",
                 "--key", api.key_id]) == 0
    lines = capsys.readouterr().out.splitlines()
    secret = lines[-1]
    assert secret.startswith("whsec_")
    integration_id = lines[0].split()[1]
    assert main(["integrations", "--url", db_url, "list"]) == 0
    listing = capsys.readouterr().out
    assert integration_id in listing and secret not in listing
    body = _post_message({"base64": base64.b64encode(png_bytes()).decode()})
    url = f"/v1/hooks/{integration_id}"
    assert _hook(api, url, body, _signed(secret, body)).status_code == 202
    assert _rows(api, inbound_messages) == 1
    listed = api.client.get("/v1/integrations", headers=api.auth).get_json()["items"]
    assert [i["id"] for i in listed] == [integration_id] and "secret" not in listed[0]
    # Rotation: the new secret verifies, the old one no longer does; other keys cannot rotate.
    _, other = api.new_key()
    assert api.client.post(f"/v1/integrations/{integration_id}/rotate",
                           headers={"Authorization": f"Bearer {other}"}).status_code == 404
    rotated = api.client.post(f"/v1/integrations/{integration_id}/rotate", headers=api.auth)
    new_secret = rotated.get_json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert _hook(api, url, body, _signed(secret, body, msg_id="evt_2")).status_code == 401
    assert _hook(api, url, body, _signed(new_secret, body, msg_id="evt_2")).status_code == 202


def _example():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "examples" / "webhooks.py"
    spec = importlib.util.spec_from_file_location("chronoseal_webhooks_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_posting_tool_sends_and_verifies(make_api) -> None:
    from standardwebhooks.webhooks import WebhookVerificationError

    from service.webhooks.signing import new_secret, sign_headers

    example = _example()
    api = make_api()
    _, url, secret = _integration(api)
    body, headers = example.build_post(secret, png_bytes(), post_url="https://x.example/1",
                                       platform="blog", message_id="evt_example")
    first = _hook(api, url, body, headers)
    assert first.status_code == 202
    assert _hook(api, url, body, headers).get_json()["id"] == first.get_json()["id"]
    callback_secret = new_secret()
    event = b'{"type":"receipt.stamped","data":{"id":"rcp_1"}}'
    signed = sign_headers(callback_secret, "msg_1", event)
    assert example.verify_callback(callback_secret, event, signed)["data"]["id"] == "rcp_1"
    with pytest.raises(WebhookVerificationError):
        example.verify_callback(new_secret(), event, signed)


def test_inbound_image_url_is_downloaded_over_https(worker_api, tmp_path, monkeypatch) -> None:
    api = worker_api
    cert, tls = self_signed_tls(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the worker trusts this image host only
    image = png_bytes(color=(1, 2, 3))
    with webhook_receiver(tls=tls, name="localhost") as host:
        host.payload = image
        _, url, secret = _integration(api)
        body = _post_message({"url": host.url.replace("/hook", "/a.png")})
        answer = _hook(api, url, body, _signed(secret, body))
        assert answer.status_code == 202
        api.run()
    receipt = api.client.get(f"/v1/stamps/{answer.get_json()['id']}", headers=api.auth).get_json()
    assert receipt["status"] == "stamped"
    assert receipt["image_sha256"] == hashlib.sha256(image).hexdigest()
    assert [r.path for r in host.requests] == ["/a.png"]
