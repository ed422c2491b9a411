"""Revocation data at stamping time: an openssl-made CA revokes its TSA certificate; a token from
before the revocation verifies, one from after does not — in check_bundle (chronoseal verify,
POST /v1/verify) and in the bundle's own verify.py. CRLs are fetched over real HTTP, through the
webhooks' SSRF guard, and stored with the token when a batch is stamped."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select

from service.cli.verify import run as verify_command
from service.evidence.bundle_check import check_bundle
from service.settings import load_settings
from service.storage import NewToken, insert_tokens, list_revocations, write_transaction
from service.storage.tables import batches, token_revocations, tokens, utcnow
from service.timestamping.revocation import (
    KIND_CRL,
    KIND_OCSP,
    RevocationEntry,
    cert_sha256,
    ordered_blobs,
)
from service.timestamping.tsa_config import load_tsa_configs_for
from service.usecases.receipts import own_receipt, receipt_bundle
from service.usecases.stamp import build_stamper, stamp_next
from service.usecases.stamping.revocation import (
    REFILL_AFTER_S,
    RevocationFetcher,
    fetcher_for,
    fill_missing,
)
from service.usecases.sweep import fill_revocation
from service.webhooks.ssrf import Allowlist
from service.wiring import Services
from tests.integration import test_bundle as _bundle_tests
from tests.integration.test_bundle import Evidence, chain_of, run_verify
from tests.support.openssl_pki import (
    make_openssl_pki,
    make_query,
    openssl_ca_crl,
    openssl_ocsp_response,
)
from tests.support.stamping_env import StampingEnv, builtin_tsa

evidence = _bundle_tests.evidence
TSA = "revocable"
CLOCK_TICK_WAIT_S = 5.0  # genTime and revocation dates have whole seconds: wait for the next


class CRLServer:
    """Serves `crl` (DER) at /ca.crl and `ocsp` (a DER OCSP response) for any GET under /ocsp/
    on 127.0.0.1, and counts the GETs (`ocsp_paths` keeps the OCSP ones)."""

    def __init__(self) -> None:
        self.crl = b""
        self.ocsp = b""
        self.gets = 0
        self.ocsp_paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.gets += 1
                if self.path.startswith("/ocsp/"):
                    outer.ocsp_paths.append(self.path)
                    body, media = outer.ocsp, "application/ocsp-response"
                else:
                    body, media = outer.crl, "application/pkix-crl"
                known = self.path == "/ca.crl" or self.path.startswith("/ocsp/")
                self.send_response(200 if known else 404)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ca.crl"
        self.ocsp_url = f"http://127.0.0.1:{self.server.server_port}/ocsp"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()


def _next_second(after: float) -> None:
    """Poll until the wall clock is in a later whole second than `after`."""
    deadline = time.monotonic() + CLOCK_TICK_WAIT_S
    while int(time.time()) <= int(after):
        assert time.monotonic() < deadline, "the clock did not advance"
        time.sleep(0.02)


@dataclass
class Revoked:
    server: CRLServer
    chain: list[x509.Certificate]
    chain_pem: str
    before: bytes  # token from before the revocation
    after: bytes  # token from after it
    crl: bytes  # the CA's CRL listing the TSA certificate (cessationOfOperation)


@pytest.fixture(scope="module")
def revoked(evidence: Evidence, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Revoked]:
    server = CRLServer()
    pki = make_openssl_pki(tmp_path_factory.mktemp("revoking-ca"),
                           tsa_extra=f"crlDistributionPoints = URI:{server.url}")
    server.crl = openssl_ca_crl(pki)  # nothing revoked yet
    before = pki.reply(make_query(digest=evidence.tree.root))
    _next_second(time.time())  # the revocation date is a later second than genTime
    crl = openssl_ca_crl(pki, revoke=pki.tsa_cert_pem, reason="cessationOfOperation")
    after = pki.reply(make_query(digest=evidence.tree.root))
    pem = chain_of(pki)
    yield Revoked(server, x509.load_pem_x509_certificates(pem.encode()), pem, before, after, crl)
    server.server.shutdown()


def _bundle(evidence: Evidence, revoked: Revoked, token: bytes, *, crl: bool = True) -> bytes:
    entries = [RevocationEntry(cert_sha256(revoked.chain[0]), KIND_CRL, None, revoked.crl)]
    return evidence.bundle(tokens={TSA: token}, chains={TSA: revoked.chain_pem},
                           revocation={TSA: entries if crl else []})


def _extract(data: bytes, where: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(where)
    return where


def test_the_fetcher_gets_the_crl_over_http_and_caches_it(revoked: Revoked) -> None:
    revoked.server.crl = revoked.crl
    fetcher = RevocationFetcher(Allowlist.parse(["127.0.0.1"]))
    gets = revoked.server.gets
    (row,) = fetcher.collect(revoked.chain)
    assert (row.kind, row.url, row.der) == (KIND_CRL, revoked.server.url, revoked.crl)
    assert row.cert_sha256 == cert_sha256(revoked.chain[0])
    assert fetcher.collect(revoked.chain) == (row,)  # until nextUpdate, from the cache
    assert revoked.server.gets == gets + 1


def test_the_fetcher_keeps_the_ssrf_rules_and_never_raises(revoked: Revoked) -> None:
    (row,) = RevocationFetcher(Allowlist()).collect(revoked.chain)
    assert row.kind == "none" and row.der is None and "loopback" in (row.note or "")
    assert row.url == revoked.server.url  # so a later retry knows where to ask


def test_python_verifier_a_token_before_the_revocation_verifies_one_after_does_not(
        evidence: Evidence, revoked: Revoked) -> None:
    good = check_bundle(_bundle(evidence, revoked, revoked.before))
    assert good.valid, good.reasons
    (status,) = good.stamps[0].revocation
    assert status.ok and status.reason == "cessationOfOperation"
    assert "after genTime" in status.detail
    bad = check_bundle(_bundle(evidence, revoked, revoked.after))
    assert not bad.valid
    assert any(r.startswith(f"revocation:{TSA}") and "at or before genTime" in r
               for r in bad.reasons), bad.reasons


def test_verify_py_a_token_before_the_revocation_verifies_one_after_does_not(
        evidence: Evidence, revoked: Revoked, tmp_path: Path) -> None:
    code, out = run_verify(_extract(_bundle(evidence, revoked, revoked.before), tmp_path / "a"))
    assert code == 0, out
    assert "openssl crl: the CRL is signed by the issuer" in out
    assert "revoked after genTime, for a reason that keeps earlier tokens valid" in out
    code, out = run_verify(_extract(_bundle(evidence, revoked, revoked.after), tmp_path / "b"))
    assert code == 1, out
    assert "[FAIL]" in out and "revoked at or before genTime" in out


def test_a_bundle_without_revocation_data_says_so_plainly(
        evidence: Evidence, revoked: Revoked, tmp_path: Path) -> None:
    data = _bundle(evidence, revoked, revoked.after, crl=False)
    verdict = check_bundle(data)
    assert verdict.valid  # nothing known against it, and nothing claimed for it
    (status,) = verdict.stamps[0].revocation
    assert status.ok is None and status.detail.startswith("no revocation data available")
    code, out = run_verify(_extract(data, tmp_path / "c"))
    assert code == 0, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("RESULT: VALID") and "revocation of revocable" in last
    assert "no revocation data was available" in last
    html = (tmp_path / "c" / "certificate.html").read_text()
    assert "no revocation data was available for 1 of 1 certificate(s)" in html
    with_crl = _extract(_bundle(evidence, revoked, revoked.before), tmp_path / "e")
    assert "revocation data from stamping time is in the bundle" in (
        with_crl / "certificate.html").read_text()


def test_a_tampered_crl_fails_both_verifiers(evidence: Evidence, revoked: Revoked,
                                             tmp_path: Path) -> None:
    crl = bytearray(revoked.crl)
    crl[-3] ^= 0x01  # inside the signature
    entries = [RevocationEntry(cert_sha256(revoked.chain[0]), KIND_CRL, None, bytes(crl))]
    data = evidence.bundle(tokens={TSA: revoked.before}, chains={TSA: revoked.chain_pem},
                           revocation={TSA: entries})
    verdict = check_bundle(data)
    assert not verdict.valid and any("signature does not verify" in r for r in verdict.reasons)
    code, out = run_verify(_extract(data, tmp_path / "d"))
    assert code == 1 and "[FAIL]" in out and "openssl crl" in out, out


def test_stamping_fetches_the_builtin_tsas_crl_and_bundles_carry_it(
        tmp_path: Path, db_url: str) -> None:
    with builtin_tsa(tmp_path / "tsa", crl=True) as tsa:
        env = StampingEnv(tmp_path, db_url, [tsa], CHRONOSEAL_BATCH_MAX_WAIT_MS="0")
        try:
            (receipt_id,) = env.add_receipts(1, enqueue=False)
            stamper = build_stamper(env.services, "revocation-test")
            try:
                stamp_next(env.services, stamper)
            finally:
                stamper.close()
            with env.services.engine.connect() as conn:
                rows = conn.execute(select(token_revocations)).mappings().all()
            assert [(r["kind"], r["url"]) for r in rows] == [(KIND_CRL, tsa.url + "crl")]
            receipt = own_receipt(env.services, receipt_id, env.api_key_id)
            data = receipt_bundle(env.services, receipt)
        finally:
            env.stop()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [n for n in archive.namelist() if n.startswith("revocation/")]
    assert members == [f"revocation/{tsa.name}/{rows[0]['cert_sha256']}.crl"]
    verdict = check_bundle(data)
    # StampingEnv's receipts hold a stand-in manifest; everything else must pass.
    assert [c.name for c in verdict.checks if c.ok is False] == ["manifest"]
    assert verdict.stamps[0].valid and [s.ok for s in verdict.stamps[0].revocation] == [True]
    assert ordered_blobs([RevocationEntry(r["cert_sha256"], r["kind"], r["url"], r["der"])
                          for r in rows]) == [rows[0]["der"]]


def test_a_tsas_own_host_is_allowed_for_its_chain_only(revoked: Revoked, tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=tmp_path / "absent.toml",
                             data_dir=str(tmp_path / "data"))
    tsas = load_tsa_configs_for(settings, {})
    builtin = next(t for t in tsas if "127.0.0.1" in t.url)
    revoked.server.crl = revoked.crl
    fetcher = fetcher_for(settings, tsas)
    (refused,) = fetcher.collect(revoked.chain, "another-tsa")  # loopback is not its host
    assert refused.kind == "none" and "loopback" in (refused.note or "")
    assert [r.kind for r in fetcher.collect(revoked.chain, builtin.name)] == [KIND_CRL]


def test_a_failed_fetch_is_stored_as_none_and_the_sweep_fills_it_later(
        revoked: Revoked, services: Services) -> None:
    revoked.server.crl = b"not a CRL"  # the CA's server answers garbage at stamping time
    down = RevocationFetcher(Allowlist.parse(["127.0.0.1"])).collect(revoked.chain)
    assert [r.kind for r in down] == ["none"] and "fetch failed" in (down[0].note or "")
    now = utcnow()
    with write_transaction(services.engine) as conn:
        conn.execute(batches.insert().values(id="bat_revocation", status="complete",
                                             tree_size=3, created_at=now))
        insert_tokens(conn, "bat_revocation", [NewToken(
            TSA, revoked.before, now, 1, revoked.chain_pem, down)], now)
        token_id = conn.execute(select(tokens.c.id)).scalar_one()
    revoked.server.crl = revoked.crl  # back up
    assert fill_revocation(services) == 0  # tried just now: waits REFILL_AFTER_S
    later = now + timedelta(seconds=REFILL_AFTER_S + 1)
    fetcher = RevocationFetcher(Allowlist.parse(["127.0.0.1"]))
    assert fill_missing(services.engine, fetcher, now=later) == 1
    with services.engine.connect() as conn:
        (row,) = list_revocations(conn, [token_id])[token_id]
    assert (row.kind, row.der) == (KIND_CRL, revoked.crl)
    assert fill_missing(services.engine, fetcher, now=later) == 0  # nothing left to fill


@pytest.fixture(scope="module")
def revoked_ocsp(evidence: Evidence, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Revoked]:
    """As `revoked`, for a TSA certificate that names only an OCSP responder; `crl` holds the
    responder's answer after the revocation."""
    server = CRLServer()
    pki = make_openssl_pki(tmp_path_factory.mktemp("ocsp-ca"),
                           tsa_extra=f"authorityInfoAccess = OCSP;URI:{server.ocsp_url}")
    before = pki.reply(make_query(digest=evidence.tree.root))
    _next_second(time.time())
    openssl_ca_crl(pki, revoke=pki.tsa_cert_pem, reason="cessationOfOperation")
    after = pki.reply(make_query(digest=evidence.tree.root))
    server.ocsp = openssl_ocsp_response(pki)
    pem = chain_of(pki)
    yield Revoked(server, x509.load_pem_x509_certificates(pem.encode()), pem, before, after,
                  server.ocsp)
    server.server.shutdown()


def _ocsp_bundle(evidence: Evidence, revoked: Revoked, token: bytes) -> bytes:
    entries = [RevocationEntry(cert_sha256(revoked.chain[0]), KIND_OCSP, None, revoked.crl)]
    return evidence.bundle(tokens={TSA: token}, chains={TSA: revoked.chain_pem},
                           revocation={TSA: entries})


def test_the_fetcher_asks_the_ocsp_responder_when_no_crl_is_named(revoked_ocsp: Revoked) -> None:
    (row,) = RevocationFetcher(Allowlist.parse(["127.0.0.1"])).collect(revoked_ocsp.chain)
    assert (row.kind, row.url, row.der) == (KIND_OCSP, revoked_ocsp.server.ocsp_url,
                                            revoked_ocsp.crl)
    (path,) = revoked_ocsp.server.ocsp_paths  # RFC 6960 A.1: GET {url}/{base64 request}
    assert path.startswith("/ocsp/M")


def test_ocsp_a_token_before_the_revocation_verifies_one_after_does_not_in_both_verifiers(
        evidence: Evidence, revoked_ocsp: Revoked, tmp_path: Path) -> None:
    good = check_bundle(_ocsp_bundle(evidence, revoked_ocsp, revoked_ocsp.before))
    assert good.valid, good.reasons
    assert [s.reason for s in good.stamps[0].revocation] == ["cessationOfOperation"]
    bad = check_bundle(_ocsp_bundle(evidence, revoked_ocsp, revoked_ocsp.after))
    assert not bad.valid and any("OCSP" in r and "at or before genTime" in r
                                 for r in bad.reasons), bad.reasons
    code, out = run_verify(_extract(_ocsp_bundle(evidence, revoked_ocsp, revoked_ocsp.before),
                                    tmp_path / "a"))
    assert code == 0, out
    assert "openssl ocsp: the OCSP response is signed by the issuer" in out
    code, out = run_verify(_extract(_ocsp_bundle(evidence, revoked_ocsp, revoked_ocsp.after),
                                    tmp_path / "b"))
    assert code == 1 and "revoked at or before genTime" in out, out


def _run_verify_md(bundle_dir: Path) -> str:
    """Every indented command of VERIFY.md, run in the bundle with bash -euo pipefail."""
    text = (bundle_dir / "VERIFY.md").read_text()
    script = "\n".join(line[4:] for line in text.splitlines() if line.startswith("    ")
                       and "IMAGE_FILE" not in line)  # no image here: that step is not ours
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=bundle_dir,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_verify_md_shows_the_revocation_check_as_commands(
        evidence: Evidence, revoked: Revoked, revoked_ocsp: Revoked, tmp_path: Path) -> None:
    out = _run_verify_md(_extract(_bundle(evidence, revoked, revoked.before), tmp_path / "crl"))
    assert "verify OK" in out and "nextUpdate=" in out
    assert "Reason Code" in out or "Cessation Of Operation" in out  # the entry is listed
    out = _run_verify_md(_extract(_ocsp_bundle(evidence, revoked_ocsp, revoked_ocsp.before),
                                  tmp_path / "ocsp"))
    assert "Response verify OK" in out and ": revoked" in out


def test_chronoseal_verify_says_revoked_after_or_before_and_exits_accordingly(
        evidence: Evidence, revoked: Revoked, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    for token, expected_exit, words in ((revoked.before, 0, "not revoked at genTime"),
                                        (revoked.after, 1, "REVOKED or unverifiable")):
        path = tmp_path / "bundle.zip"
        path.write_bytes(_bundle(evidence, revoked, token))
        args = argparse.Namespace(bundle=path, image=None, digest=None, ca=None,
                                  partial_chain=False, json=False, at=None)
        assert verify_command(args) == expected_exit
        out = capsys.readouterr().out
        assert f"revocation ({words}): " in out and "cessationOfOperation" in out
