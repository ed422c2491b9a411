"""The openssl PKI fixture itself works: openssl verifies its own tokens."""

from __future__ import annotations

import hashlib

from tests.support.openssl_pki import make_query, openssl_ts_verify


def test_openssl_pki_round_trip(openssl_pki) -> None:
    pki = openssl_pki(key="ec-p256", intermediate=True)
    digest = hashlib.sha256(b"chronoseal").digest()
    reply = pki.reply(make_query(digest=digest), include_chain=True)
    assert openssl_ts_verify(reply, digest=digest, ca_pem=pki.root_pem)
    assert not openssl_ts_verify(reply, data=b"other", ca_pem=pki.root_pem)
