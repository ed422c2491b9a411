"""The same limits through gunicorn (`chronoseal serve`): an inbound body over the limit is a
413 when it comes chunked, as with a Content-Length; rate limits answer 429 with Retry-After
to real client connections."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import requests
from standardwebhooks import Webhook

from service.webhooks.inbound import max_body_bytes
from tests.e2e.conftest import REDIS_URL
from tests.support.images import png_bytes
from tests.support.serving import serving

UPLOAD_LIMIT = 4096
CHUNK = 64 * 1024


def _signed(secret: str, body: bytes, msg_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
            "Content-Type": "application/json"}


def _chunks(body: bytes):
    """A generator body: requests sends it with Transfer-Encoding: chunked, no length."""
    for at in range(0, len(body), CHUNK):
        yield body[at:at + CHUNK]


def test_limits_hold_through_gunicorn(tmp_path, queue_name) -> None:
    settings = {"CHRONOSEAL_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
                "CHRONOSEAL_RATE_LIMIT_SEARCH_PER_ADDRESS": "2/minute"}
    with serving(tmp_path, queue_name, REDIS_URL, **settings) as served:
        auth = {"Authorization": f"Bearer {served.secret}"}
        made = requests.post(f"{served.url}/v1/integrations", json={"name": "blog"},
                             headers=auth, timeout=10).json()
        hook, secret = f"{served.url}{made['url']}", made["secret"]
        message = json.dumps({"type": "post.published", "data": {
            "image": {"base64": base64.b64encode(png_bytes(4, 4)).decode()},
            "publication": {"platform": "blog", "post_url": "https://blog.example/1",
                            "published_at": "2026-12-01T00:00:00Z"}}}).encode()
        big = message + b" " * max_body_bytes(UPLOAD_LIMIT)  # valid JSON, over the limit
        for body in (big, _chunks(big)):
            answer = requests.post(hook, data=body, headers=_signed(secret, big, "big"),
                                   timeout=30)
            assert answer.status_code == 413, answer.text
            assert answer.json()["type"] == "urn:chronoseal:problem:payload-too-large"
        accepted = requests.post(hook, data=_chunks(message), timeout=30,
                                 headers=_signed(secret, message, "small"))
        assert accepted.status_code == 202, accepted.text

        image = png_bytes(16, 16)
        answers = [requests.post(f"{served.url}/v1/search", timeout=30,
                                 files={"image": ("a.png", image, "image/png")})
                   for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429], [a.text for a in answers]
    assert answers[2].headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
