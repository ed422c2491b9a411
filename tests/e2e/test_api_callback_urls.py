"""callback_url is checked when it is registered (issue 11, section 8): POST /v1/stamps and an
inbound post.published message refuse a URL whose address is internal (a literal, one embedded
in IPv6, or a name resolving there) with 400 url-refused, and store nothing."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import func, select

from service.storage.tables import inbound_messages
from tests.e2e.test_api_webhooks import _hook, _integration, _post_message, _signed
from tests.support.images import png_bytes

INTERNAL_NAME, PUBLIC_NAME = "intranet.example", "hooks.example"


def _resolver(host: str, port: int) -> list[str]:
    """DNS as the test needs it: one name inside, one outside; the rest as the system has it."""
    from service.webhooks.ssrf import system_resolver

    return {INTERNAL_NAME: ["93.184.215.14", "10.1.2.3"],  # one internal answer is enough
            PUBLIC_NAME: ["93.184.215.14"]}.get(host) or system_resolver(host, port)


REFUSED = [
    "http://127.0.0.1/cb", "http://10.0.0.1/cb", "https://169.254.169.254/latest",
    "http://[::1]/cb", "http://[2002:7f00:1::]/cb", "http://[2002:a9fe:a9fe::1]/cb",
    "http://[2002:a00:1::]/cb", "http://[fec0::1]/cb", "http://[2001:0:7f00:1::]/cb",
    "http://[64:ff9b::7f00:1]/cb", "http://[::ffff:10.0.0.1]/cb", "http://localhost:8080/cb",
    f"https://{INTERNAL_NAME}/cb",
]


@pytest.mark.parametrize("url", REFUSED)
def test_an_upload_with_an_internal_callback_url_is_refused(make_api, url: str) -> None:
    api = make_api(resolver=_resolver)
    before = api.counts()
    answer = api.post_image(png_bytes(), callback_url=url)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.content_type == "application/problem+json"
    assert answer.get_json()["type"].endswith("url-refused")
    assert api.counts() == before


def test_a_digest_registration_checks_its_callback_url_too(make_api) -> None:
    api = make_api(resolver=_resolver)
    body = {"sha256": hashlib.sha256(b"x").hexdigest(), "callback_url": "http://[fec0::1]/"}
    answer = api.client.post("/v1/stamps", json=body, headers=api.auth)
    assert answer.status_code == 400 and answer.get_json()["type"].endswith("url-refused")
    body["callback_url"] = f"https://{PUBLIC_NAME}/cb"
    assert api.client.post("/v1/stamps", json=body, headers=api.auth).status_code == 202


def test_an_allowlisted_receiver_on_a_private_network_is_accepted(make_api) -> None:
    api = make_api(resolver=_resolver, webhook_allowlist=("10.0.0.0/8",))
    assert api.post_image(png_bytes(), callback_url="http://10.0.0.1/cb").status_code == 202


@pytest.mark.parametrize("url", ["http://[2002:7f00:1::]/cb", f"https://{INTERNAL_NAME}/cb",
                                 "http://localhost/cb"])
def test_an_inbound_message_with_an_internal_callback_url_is_refused(make_api, url: str) -> None:
    api = make_api(resolver=_resolver)
    _, hook_url, secret = _integration(api)
    body = _post_message({"base64": base64.b64encode(png_bytes()).decode()}, callback_url=url)
    answer = _hook(api, hook_url, body, _signed(secret, body))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["type"].endswith("url-refused")
    with api.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbound_messages)).scalar_one() == 0
    good = _post_message({"base64": base64.b64encode(png_bytes()).decode()},
                         callback_url=f"https://{PUBLIC_NAME}/cb")
    assert _hook(api, hook_url, good, _signed(secret, good, msg_id="evt_2")).status_code == 202
