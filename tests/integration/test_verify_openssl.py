"""Our verdict equals `openssl ts -verify`'s on tokens made by `openssl ts -reply`."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from service.timestamping import cms, tlv
from service.timestamping.tsa_query import parse_query
from service.timestamping.verify import verify_timestamp
from tests.support import token_builder as tb
from tests.support.openssl_pki import OpenSSLPKI, make_query, openssl_ts_verify

DATA = b"compare with openssl"
DIGEST = hashlib.sha256(DATA).digest()
TAMPERS = ["none", "signature", "tst_info", "other_data", "wrong_root"]


def certs(path: Path | None) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes()) if path else []


def flip(reply: bytes, what: str) -> bytes:
    """Flip one byte in the middle of the signature, or in the last byte of the TSTInfo."""
    signed = cms.parse_signed_data(*cms.parse_envelope(reply).content)
    out = bytearray(reply)
    if what == "signature":
        sig = signed.signers[0].signature
        out[reply.find(sig) + len(sig) // 2] ^= 0x01
    else:
        tst = signed.econtent
        out[reply.find(tst) + len(tst) - 1] ^= 0x01
    return bytes(out)


def both(pki: OpenSSLPKI, reply: bytes, *, data: bytes = DATA, root: Path | None = None,
         untrusted: bool = False, **ours) -> tuple[bool, bool]:
    """(our verdict, OpenSSL's) for the same reply, data, root and untrusted certificates."""
    root = root or pki.root_pem
    chain = pki.chain_pem if untrusted else None
    verdict = verify_timestamp(reply, digest=hashlib.sha256(data).digest(), roots=certs(root),
                               untrusted=certs(chain), **ours)
    theirs = openssl_ts_verify(reply, data=data, ca_pem=root, untrusted=chain)
    return verdict.valid, theirs


@pytest.mark.parametrize("tamper", TAMPERS)
@pytest.mark.parametrize("certs_in_token", [True, False], ids=["certs", "nocerts"])
@pytest.mark.parametrize("intermediate", [False, True], ids=["root", "intermediate"])
@pytest.mark.parametrize("key", ["rsa2048", "ec-p256", "ec-p384"])
def test_verdict_matches_openssl(openssl_pki, key, intermediate, certs_in_token, tamper) -> None:
    pki = openssl_pki(key=key, intermediate=intermediate)
    reply = pki.reply(make_query(DATA, cert_req=certs_in_token), include_chain=certs_in_token)
    data, root = DATA, None
    if tamper in ("signature", "tst_info"):
        reply = flip(reply, tamper)
    elif tamper == "other_data":
        data = b"other data"
    elif tamper == "wrong_root":
        root = openssl_pki(key="ec-p256", intermediate=False).root_pem
        if root == pki.root_pem:
            root = openssl_pki(key="ec-p384", intermediate=False).root_pem
    ours, theirs = both(pki, reply, data=data, root=root, untrusted=not certs_in_token)
    assert ours == theirs == (tamper == "none")


@pytest.mark.parametrize(
    ("params", "hash_alg"),
    [
        ({"key": "ec-p521"}, "sha256"),
        ({"key": "ec-p256", "digest": "sha384"}, "sha256"),
        ({"key": "rsa2048", "digest": "sha512"}, "sha512"),
        ({"key": "ec-p256", "ess_cert_id_alg": "sha1"}, "sha256"),
        ({"key": "ec-p256", "ess_cert_id_alg": "sha512"}, "sha384"),
        ({"key": "ec-p256"}, "sha1"),
    ],
)
def test_other_openssl_profiles_match(openssl_pki, params, hash_alg) -> None:
    pki = openssl_pki(**params)
    reply = pki.reply(make_query(DATA, hash_alg=hash_alg))
    digest = hashlib.new(hash_alg, DATA).digest()
    verdict = verify_timestamp(reply, digest=digest, hash_alg=hash_alg, roots=certs(pki.root_pem))
    assert verdict.valid == openssl_ts_verify(reply, data=DATA, ca_pem=pki.root_pem) is True
    assert any("sha1" in w for w in verdict.warnings) == (hash_alg == "sha1")


def test_nonce_and_policy_match_openssl_query_check(openssl_pki) -> None:
    pki = openssl_pki(key="ec-p256")
    query = make_query(DATA, policy="1.3.6.1.4.1.99999.1.2")
    reply = pki.reply(query)
    request_nonce = _query_nonce(query)
    roots = certs(pki.root_pem)
    ok = verify_timestamp(reply, digest=DIGEST, roots=roots, nonce=request_nonce,
                          policy="1.3.6.1.4.1.99999.1.2")
    assert ok.valid and openssl_ts_verify(reply, query=query, ca_pem=pki.root_pem)
    other_query = make_query(DATA)
    bad = verify_timestamp(reply, digest=DIGEST, roots=roots, nonce=_query_nonce(other_query))
    assert not bad.valid and not openssl_ts_verify(reply, query=other_query, ca_pem=pki.root_pem)


def _query_nonce(query: bytes) -> int:
    """The nonce of an openssl-built query, read by the built-in TSA's parser."""
    nonce = parse_query(query).nonce
    assert nonce is not None
    return nonce


def test_bare_token_matches_openssl(openssl_pki) -> None:
    pki = openssl_pki(key="ec-p256")
    reply = pki.reply(make_query(DATA))
    token_el = tlv.children(reply, tlv.read(reply))[1]
    token = reply[token_el.start : token_el.end]
    ours = verify_timestamp(token, digest=DIGEST, roots=certs(pki.root_pem)).valid
    assert ours == openssl_ts_verify(token, data=DATA, ca_pem=pki.root_pem, token=True) is True


def test_ber_long_form_openssl_token_matches(openssl_pki) -> None:
    pki = openssl_pki(key="ec-p256", intermediate=True)
    reply = tb.to_long_form(pki.reply(make_query(DATA), include_chain=True), max_depth=5)
    assert both(pki, reply) == (True, True)


def test_ber_inside_signed_parts_deliberately_differs_from_openssl(openssl_pki) -> None:
    """OpenSSL refuses long-form lengths inside certificates and signed attributes; we read them
    and verify the signatures over the DER re-encoding, as RFC 5652 5.4 describes."""
    pki = openssl_pki(key="ec-p256", intermediate=True)
    reply = tb.to_long_form(pki.reply(make_query(DATA), include_chain=True))
    assert both(pki, reply) == (True, False)


def test_rejection_matches_openssl(openssl_pki) -> None:
    """OpenSSL 3.0 cannot sign with Ed25519 and answers a rejection: both call it invalid."""
    pki = openssl_pki(key="ed25519")
    reply = pki.reply(make_query(DATA))
    verdict = verify_timestamp(reply, digest=DIGEST, roots=certs(pki.root_pem))
    assert not verdict.valid and verdict.facts.status == "rejection"
    assert not openssl_ts_verify(reply, data=DATA, ca_pem=pki.root_pem)


def test_expired_since_gen_time_deliberately_differs_from_openssl(openssl_pki) -> None:
    """OpenSSL checks the chain at the current time; we check it at genTime and warn."""
    pki = openssl_pki(key="ec-p256", not_after_days=1)
    reply = pki.reply(make_query(DATA))
    verdict = verify_timestamp(reply, digest=DIGEST, roots=certs(pki.root_pem))
    later = verdict.facts.gen_time + timedelta(days=30)
    after = verify_timestamp(reply, digest=DIGEST, roots=certs(pki.root_pem), now=later)
    assert verdict.valid and after.valid
    assert any("expired" in w for w in after.warnings)
    assert not openssl_ts_verify(reply, data=DATA, ca_pem=pki.root_pem,
                                 attime=int(later.timestamp()))
    assert openssl_ts_verify(reply, data=DATA, ca_pem=pki.root_pem,
                             attime=int(verdict.facts.gen_time.timestamp()))
