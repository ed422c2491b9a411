"""Registering inbound messages (the inbound use case's job side) on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json

from service.storage import get_receipt, write_transaction
from service.storage.inbound import accept_inbound, create_integration, get_inbound
from service.usecases.inbound import register_inbound
from service.usecases.signals import immediate_signals
from service.webhooks.errors import ResolutionError
from service.webhooks.inbound import InboundOptions
from service.webhooks.signing import new_secret
from service.webhooks.ssrf import Allowlist
from service.webhooks.transport import Timeouts
from tests.support.images import png_bytes
from tests.support.pictures import picture_png

OPTIONS = InboundOptions(Allowlist.parse([]), 1024 * 1024, Timeouts(1.0, 2.0), (0.0, 0.0))


def _message(image: dict, generation: dict | None = None) -> bytes:
    return json.dumps({"type": "post.published", "data": {
        "image": image, "generation": {"prompt": "p"} if generation is None else generation,
        "publication": {"platform": "blog", "post_url": "https://b.example/1",
                        "published_at": "yesterday, says the tool"}}}).encode()


def _accepted(db_engine, make_api_key, body: bytes, key=None):
    key = key or make_api_key()[0]
    with write_transaction(db_engine) as conn:
        integration, _ = create_integration(conn, key.id, "blog", secret=new_secret())
        message, created = accept_inbound(conn, integration.id, "evt_1", body, "rcp_TEST", 60)
        again, created_again = accept_inbound(conn, integration.id, "evt_1", b"{}", "rcp_X", 60)
    assert created and not created_again and again.receipt_id == "rcp_TEST"
    return key, integration, message


def _register(services, inbound_id: str, options: InboundOptions = OPTIONS):
    return register_inbound(services, inbound_id, immediate_signals(services), options)


def test_register_creates_the_receipt_once_and_drops_the_body(services, make_api_key) -> None:
    image = png_bytes()
    key, integration, message = _accepted(
        services.engine, make_api_key, _message({"base64": base64.b64encode(image).decode()}))
    assert _register(services, message.id) == "rcp_TEST"
    assert _register(services, message.id) == "rcp_TEST"  # a second run: no-op
    with services.engine.connect() as conn:
        receipt = get_receipt(conn, "rcp_TEST", key.id)
        stored = get_inbound(conn, message.id)
    manifest = json.loads(receipt.manifest_jcs)
    assert manifest["publication"] == {"platform": "blog", "post_url": "https://b.example/1",
                                       "published_at": "yesterday, says the tool",
                                       "reported_by": integration.id}
    assert manifest["image"]["size"] == len(image) and receipt.status == "pending"
    assert (stored.status, stored.body) == ("done", None)


def test_an_image_host_that_does_not_resolve_is_retried_then_fails(services,
                                                                  make_api_key) -> None:
    _, _, message = _accepted(services.engine, make_api_key,
                              _message({"url": "https://img.example.test/a.png"}))

    def dns_down(host: str, port: int) -> list[str]:
        raise ResolutionError(f"cannot resolve {host}")

    options = InboundOptions(OPTIONS.allowlist, OPTIONS.max_image_bytes, OPTIONS.timeouts,
                             OPTIONS.schedule_s, dns_down)
    assert _register(services, message.id, options) is None
    with services.engine.connect() as conn:
        first = get_inbound(conn, message.id)
    assert (first.status, first.attempts) == ("accepted", 1)
    assert first.body is not None  # kept for the next attempt
    assert _register(services, message.id, options) is None
    with services.engine.connect() as conn:
        last = get_inbound(conn, message.id)
    assert (last.status, last.attempts, last.body) == ("failed", 2, None)
    assert "cannot resolve" in last.error


def test_an_image_url_that_now_resolves_privately_fails_at_once(services, make_api_key) -> None:
    _, _, message = _accepted(services.engine, make_api_key,
                              _message({"url": "https://img.example.test/a.png"}))
    options = InboundOptions(OPTIONS.allowlist, OPTIONS.max_image_bytes, OPTIONS.timeouts,
                             OPTIONS.schedule_s, lambda host, port: ["10.0.0.7"])
    assert _register(services, message.id, options) is None
    with services.engine.connect() as conn:
        stored = get_inbound(conn, message.id)
    assert (stored.status, stored.attempts) == ("failed", 1) and "private" in stored.error


def test_an_image_larger_than_the_limit_fails_the_message(services, make_api_key) -> None:
    image = picture_png(3)
    small = InboundOptions(OPTIONS.allowlist, 1000, OPTIONS.timeouts, OPTIONS.schedule_s)
    _, _, message = _accepted(services.engine, make_api_key,
                              _message({"base64": base64.b64encode(image).decode()}))
    assert len(image) > 1000
    assert _register(services, message.id, small) is None
    with services.engine.connect() as conn:
        stored = get_inbound(conn, message.id)
        assert get_receipt(conn, "rcp_TEST", None) is None
    assert stored.status == "failed" and "1000" in stored.error


def test_a_callback_url_that_resolves_inside_by_then_fails_the_message(services,
                                                                       make_api_key) -> None:
    """Accepted while its name did not resolve; registered once it resolves to 10.0.0.8."""
    from dataclasses import replace

    body = json.loads(_message({"base64": base64.b64encode(png_bytes()).decode()}))
    body["data"]["callback_url"] = "https://hooks.example.test/cb"
    _, _, message = _accepted(services.engine, make_api_key, json.dumps(body).encode())
    inside = replace(services, resolver=lambda host, port: ["10.0.0.8"])
    assert _register(inside, message.id) is None
    with services.engine.connect() as conn:
        stored = get_inbound(conn, message.id)
        assert get_receipt(conn, "rcp_TEST", None) is None
    assert stored.status == "failed" and "10.0.0.8" in (stored.error or ""), stored


def test_inbound_names_session_and_parents_through_the_one_parser(services,
                                                                  make_api_key) -> None:
    body = json.loads(_message({"base64": base64.b64encode(png_bytes()).decode()}))
    body["data"].update(session="blog-posts", parents=["cd" * 32])
    key, _, message = _accepted(services.engine, make_api_key, json.dumps(body).encode())
    assert _register(services, message.id) == "rcp_TEST"
    with services.engine.connect() as conn:
        manifest = json.loads(get_receipt(conn, "rcp_TEST", key.id).manifest_jcs)
    assert manifest["session"] == "blog-posts"
    assert manifest["parents"] == [{"image_sha256": "cd" * 32}]


def test_inbound_with_an_unknown_parent_fails_the_message(services, make_api_key) -> None:
    body = json.loads(_message({"base64": base64.b64encode(png_bytes()).decode()}))
    body["data"]["parents"] = ["rcp_01M8TCEWT0WSDDVPRPXZY8D2JF"]
    key, _, message = _accepted(services.engine, make_api_key, json.dumps(body).encode())
    assert _register(services, message.id) is None
    with services.engine.connect() as conn:
        assert get_receipt(conn, "rcp_TEST", key.id) is None
        assert get_inbound(conn, message.id).status == "failed"
