"""RFC 4998 renewal: a TSA certificate valid one day, an archive timestamp before it expires.

Two openssl TSAs over HTTP: "shortlived" (certificate valid one day) stamps a receipt; the
renewal (usecases.renew, `chronoseal renew`) asks "archive" (a year) for an archive timestamp.
Verified "two days later" (an injected clock), the bundle holds with the renewal and fails
without it or with a tampered one, in check_bundle (POST /v1/verify, `chronoseal verify`).
The first archive timestamp covers the token's revocation data too: a swapped CRL fails it,
and a CRL stored after the renewal is reported as not covered.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from service.cli import main
from service.evidence.bundle_check import check_bundle
from service.evidence.templates.verify import token_facts
from service.storage import NewToken, claim_batch, list_tokens, store_revocation, write_transaction
from service.storage.tokens import RevocationRow
from service.timestamping import ers
from service.timestamping.batch_head import build_batch_head, head_imprint
from service.timestamping.merkle import MerkleTree
from service.timestamping.revocation import KIND_CRL, KIND_NONE, cert_sha256
from service.usecases.receipts import own_receipt, receipt_bundle
from service.usecases.renew import renew
from service.usecases.stamping.results import store_batch_result
from service.usecases.sweep import renew_if_due, renew_turn_key
from tests.e2e.conftest import Api
from tests.integration.test_bundle import run_verify
from tests.integration.test_bundle_check import rezip
from tests.support.openssl_pki import OpenSSLPKI, make_openssl_pki, make_query, openssl_ca_crl
from tests.support.openssl_tsa_server import serve_openssl_tsa

TWO_DAYS = timedelta(days=2)


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OpenSSLPKI]:
    base = tmp_path_factory.mktemp("renewal-pkis")
    return {"shortlived": make_openssl_pki(base / "short", not_after_days=1),
            "archive": make_openssl_pki(base / "archive")}


@pytest.fixture
def renewal_api(make_api: Callable[..., Api], tmp_path: Path,
                pkis: dict[str, OpenSSLPKI]) -> Iterator[Api]:
    with serve_openssl_tsa(pkis["archive"]) as url:
        config = tmp_path / "tsas.toml"
        config.write_text("".join(
            f'[[tsa]]\nname = "{name}"\nurl = "{url if name == "archive" else "http://127.0.0.1:1/"}"'
            f'\nroots = "{pki.root_pem}"\n' for name, pki in pkis.items()))
        yield make_api(tsa_config=(str(config),), tsas=("shortlived", "archive"),
                       renew_tsa="archive")


def stamp_with(api: Api, pki: OpenSSLPKI, tsa: str, images: list[bytes],
               revocation: tuple[RevocationRow, ...] = ()) -> list[str]:
    """Register `images` and stamp them in one batch with a token from `pki` (format 2),
    stored with `revocation` (as stamping's fetch would have)."""
    ids = []
    for image in images:
        posted = api.client.post("/v1/stamps", json={"sha256": hashlib.sha256(image).hexdigest()},
                                 headers=api.auth)
        assert posted.status_code == 202, posted.get_data(as_text=True)
        ids.append(posted.get_json()["id"])
    batch = claim_batch(api.services.engine, 100, "test", 60)
    assert batch is not None
    tree = MerkleTree([bytes.fromhex(d) for d in batch.manifest_digests])
    head = build_batch_head(tree.root, tree.size, batch.id, batch.created_at)
    reply = pki.reply(make_query(digest=head_imprint(head)))
    facts = token_facts(reply)
    proofs = {leaf.receipt_id: [p.hex() for p in tree.inclusion_proof(leaf.index)]
              for leaf in batch.leaves}
    chain = pki.chain_pem.read_text() + pki.root_pem.read_text()
    store_batch_result(api.services.engine, batch.id, tree.root.hex(), proofs,
                       [NewToken(tsa, reply, facts.gen_time, facts.serial, chain, revocation)], 1,
                       head_jcs=head)
    return ids


def bundle_of(api: Api, receipt_id: str) -> bytes:
    return receipt_bundle(api.services, own_receipt(api.services, receipt_id, api.key_id))


def renewal_reasons(data: bytes, now: datetime) -> tuple[bool, list[str]]:
    verdict = check_bundle(data, now=now)
    return verdict.valid, [r for r in verdict.reasons if r.startswith("renewal:")]


def extract_to(where: Path, data: bytes) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(where)
    return where


def test_a_renewal_before_expiry_keeps_the_evidence_valid(
        renewal_api: Api, pkis: dict[str, OpenSSLPKI], tmp_path: Path) -> None:
    first = stamp_with(renewal_api, pkis["shortlived"], "shortlived", [b"one", b"two", b"three"])
    second = stamp_with(renewal_api, pkis["shortlived"], "shortlived", [b"four"])
    later = datetime.now(UTC) + TWO_DAYS
    unrenewed = bundle_of(renewal_api, first[1])
    assert check_bundle(unrenewed).valid  # today the certificate is still valid
    valid, reasons = renewal_reasons(unrenewed, later)
    assert not valid and "no archive timestamp" in reasons[0], reasons

    report = renew(renewal_api.services)
    assert (report.renewed, report.tsa) == (2, "archive")  # two batches, one new token
    assert renew(renewal_api.services).renewed == 0  # renewed evidence is not due again

    for receipt_id in (first[1], second[0]):
        renewed = bundle_of(renewal_api, receipt_id)
        with zipfile.ZipFile(io.BytesIO(renewed)) as archive:
            names = archive.namelist()
            record = ers.decode_record(archive.read("evidence-records/shortlived.ers"))
        assert {"evidence-records/shortlived.ers", "evidence-records/shortlived.json"} <= set(
            names)
        assert len(record) == 1 and len(record[0].lists) == 2  # 2 leaves: own list + sibling
        verdict = check_bundle(renewed, now=later)
        assert verdict.valid, verdict.reasons
        check = next(c for c in verdict.checks if c.name == "renewal:shortlived")
        assert "1 archive timestamp(s)" in check.detail
    renewed = bundle_of(renewal_api, first[1])
    answer = renewal_api.client.post("/v1/verify", data={"bundle": (io.BytesIO(renewed), "b")},
                                     content_type="multipart/form-data").get_json()
    assert answer["valid"], answer  # POST /v1/verify checks the record too (as of its clock)
    assert any(c["name"] == "renewal:shortlived" and c["ok"] for c in answer["checks"])

    # Without the renewal, two days later, the evidence has lapsed.
    stripped = rezip(renewed, lambda f: [f.pop(n) for n in list(f)
                                         if n.startswith("evidence-records/")])
    assert not renewal_reasons(stripped, later)[0]

    # A tampered renewal: one hash of the reduced tree, or the archive token, changed.
    def flip_hash(files: dict[str, bytes]) -> None:
        der = bytearray(files["evidence-records/shortlived.ers"])
        first_hash = der.index(b"\x04\x20") + 2  # the first OCTET STRING: a tree hash
        der[first_hash] ^= 0x01
        files["evidence-records/shortlived.ers"] = bytes(der)

    def flip_signature(files: dict[str, bytes]) -> None:
        der = bytearray(files["evidence-records/shortlived.ers"])
        der[-3] ^= 0x01
        files["evidence-records/shortlived.ers"] = bytes(der)

    for tamper in (flip_hash, flip_signature):
        valid, reasons = renewal_reasons(rezip(renewed, tamper), later)
        assert not valid and reasons, reasons

    # Past the archive certificate's own expiry, the chain must be renewed again.
    valid, reasons = renewal_reasons(renewed, later + timedelta(days=3 * 365))
    assert not valid and "renew again" in reasons[0], reasons

    # The bundle's own verify.py and `chronoseal verify --at` judge the same way.
    at = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    for data, expected in ((renewed, 0), (stripped, 1), (rezip(renewed, flip_hash), 1),
                           (rezip(renewed, flip_signature), 1)):
        where = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(where)
        code, out = run_verify(where, "--at", at)
        assert code == expected, out
        (where / "b.zip").write_bytes(data)
        assert main(["verify", str(where / "b.zip"), "--at", at]) == expected
    code, out = run_verify(extract_to(tmp_path / "now", renewed))
    assert code == 0 and "archive timestamp 1: openssl ts -verify at its genTime" in out, out


def test_chronoseal_renew_runs_it_now_and_the_sweeper_once_per_interval(
        renewal_api: Api, pkis: dict[str, OpenSSLPKI], tmp_path: Path) -> None:
    stamp_with(renewal_api, pkis["shortlived"], "shortlived", [b"cli"])
    settings = renewal_api.services.settings
    env = {**os.environ, "DATABASE_URL": renewal_api.services.engine.url.render_as_string(
               hide_password=False),
           "CHRONOSEAL_DATA_DIR": settings.data_dir, "REDIS_URL": settings.effective_redis_url,
           "CHRONOSEAL_QUEUE": settings.queue_name,
           "CHRONOSEAL_TSA_CONFIG": ",".join(settings.tsa_config),
           "CHRONOSEAL_TSAS": ",".join(settings.tsas), "CHRONOSEAL_RENEW_TSA": "archive"}
    proc = subprocess.run([sys.executable, "-m", "service.cli", "renew"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["renewed"] == 1 and json.loads(proc.stdout)["tsa"] == "archive"
    stamp_with(renewal_api, pkis["shortlived"], "shortlived", [b"swept"])
    renewal_api.services.redis.delete(renew_turn_key(renewal_api.services))  # an earlier test's
    assert renew_if_due(renewal_api.services)  # this sweeper took the day's turn and renewed
    assert not renew_if_due(renewal_api.services)  # the next sweep within the interval does not
    assert renew(renewal_api.services).renewed == 0  # both tokens were renewed


def test_the_evidence_record_covers_the_revocation_data_stored_before_it(
        renewal_api: Api, pkis: dict[str, OpenSSLPKI], tmp_path: Path) -> None:
    pki = pkis["shortlived"]
    tsa_cert = x509.load_pem_x509_certificates(pki.chain_pem.read_bytes())[0]
    crl = openssl_ca_crl(pki)  # nothing revoked
    url = "http://127.0.0.1:1/ca.crl"
    stored = RevocationRow(cert_sha256(tsa_cert), KIND_CRL, url, crl)
    member = f"revocation/shortlived/{cert_sha256(tsa_cert)}.crl"
    (early,) = stamp_with(renewal_api, pki, "shortlived", [b"crl-early"], (stored,))
    failed = RevocationRow(cert_sha256(tsa_cert), KIND_NONE, url, None, "connection refused")
    (late,) = stamp_with(renewal_api, pki, "shortlived", [b"crl-late"], (failed,))
    assert renew(renewal_api.services).renewed == 2
    # The sweeper's refill (fill_missing) stores the late token's CRL after its renewal.
    batch_id = own_receipt(renewal_api.services, late, renewal_api.key_id).batch_id
    assert batch_id is not None
    with write_transaction(renewal_api.services.engine) as conn:
        (token,) = list_tokens(conn, batch_id)
        assert store_revocation(conn, token.id, [stored]) == 1
    later = datetime.now(UTC) + TWO_DAYS

    covered = bundle_of(renewal_api, early)
    with zipfile.ZipFile(io.BytesIO(covered)) as archive:
        assert archive.read(member) == crl
        (ats,) = ers.decode_record(archive.read("evidence-records/shortlived.ers"))
        rendering = json.loads(archive.read("evidence-records/shortlived.json"))
    chain_length = len(x509.load_pem_x509_certificates(bundle_chain(covered)))
    assert ers.sha256(crl) in ats.lists[0] and len(ats.lists[0]) == 1 + chain_length + 1
    first = rendering["archive_timestamps"][0]
    assert member in first["data_objects"] and first["not_covered"] == []
    verdict = check_bundle(covered, now=later)
    assert verdict.valid, verdict.reasons
    check = next(c for c in verdict.checks if c.name == "renewal:shortlived")
    assert "1 revocation member(s)" in check.detail and "not covered" not in check.detail

    # Another CRL, genuinely signed by the same CA: the revocation check accepts it, the
    # evidence record does not (it covered the CRL stored at renewal). Removing it fails too.
    other = openssl_ca_crl(pki)
    assert other != crl
    swapped = rezip(covered, lambda f: f.update({member: other}))
    removed = rezip(covered, lambda f: f.pop(member))
    verdict = check_bundle(swapped, now=later)
    assert all(c.ok for c in verdict.checks if c.name == "revocation:shortlived"), verdict.checks
    for data in (swapped, removed):
        valid, reasons = renewal_reasons(data, later)
        assert not valid and "no longer holds" in reasons[0], reasons

    # Stored after the renewal: still checked as revocation data, reported as not covered.
    uncovered = bundle_of(renewal_api, late)
    with zipfile.ZipFile(io.BytesIO(uncovered)) as archive:
        assert archive.read(member) == crl
        rendering = json.loads(archive.read("evidence-records/shortlived.json"))
    assert rendering["archive_timestamps"][0]["not_covered"] == [member]
    verdict = check_bundle(uncovered, now=later)
    assert verdict.valid, verdict.reasons
    check = next(c for c in verdict.checks if c.name == "renewal:shortlived")
    assert f"not covered (fetched after the first renewal): {member}" in check.detail

    # The bundle's own verify.py and `chronoseal verify` judge the same way.
    at = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    for label, data, expected in (("covered", covered, 0), ("swapped", swapped, 1),
                                  ("removed", removed, 1), ("uncovered", uncovered, 0)):
        where = extract_to(tmp_path / label, data)
        code, out = run_verify(where, "--at", at)
        assert code == expected, out
        if expected:
            assert "[FAIL] shortlived: archive timestamp 1 covers the token" in out, out
        elif label == "uncovered":
            assert "not covered by the evidence record" in out and member in out, out
        (where / "b.zip").write_bytes(data)
        assert main(["verify", str(where / "b.zip"), "--at", at]) == expected


def bundle_chain(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("certs/shortlived.pem")
