"""Standard Webhooks signing: what we sign verifies with the reference library, and back."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from service.webhooks.errors import SignatureError
from service.webhooks.signing import new_secret, sign_headers, verify

BODY = b'{"type":"post.published","data":{}}'


def test_secret_format() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


def test_our_signature_verifies_with_standardwebhooks() -> None:
    secret = new_secret()
    headers = sign_headers(secret, "msg_1", BODY)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers) == {"type": "post.published", "data": {}}


def test_verify_accepts_reference_signatures_and_returns_the_id() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_2", now, BODY.decode())
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": f"v1,bogus {signature}"}  # several signatures: any may match
    assert verify(secret, BODY, headers) == "msg_2"


@pytest.mark.parametrize("change", [
    {"webhook-signature": "v1,AAAA"}, {"webhook-signature": "garbage"},
    {"webhook-signature": "v1,!!notbase64!!"}, {"webhook-id": "msg_other"},
    {"webhook-timestamp": "not-a-number"}, {"webhook-signature": ""}, {"webhook-id": ""},
])
def test_bad_or_missing_headers_are_refused(change: dict[str, str]) -> None:
    secret = new_secret()
    headers = {**sign_headers(secret, "msg_3", BODY), **change}
    with pytest.raises(SignatureError):
        verify(secret, BODY, headers)


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_timestamps_beyond_five_minutes_are_refused(skew: timedelta) -> None:
    secret = new_secret()
    headers = sign_headers(secret, "msg_4", BODY, now=datetime.now(UTC) + skew)
    with pytest.raises(SignatureError):
        verify(secret, BODY, headers)


def test_another_secret_or_body_is_refused() -> None:
    secret = new_secret()
    headers = sign_headers(secret, "msg_5", BODY)
    with pytest.raises(SignatureError):
        verify(new_secret(), BODY, headers)
    with pytest.raises(SignatureError):
        verify(secret, BODY + b" ", headers)
    with pytest.raises(SignatureError):
        verify(secret, b"\xff\xfe", headers)
