"""Benchmark what revocation data costs; the last line printed is one JSON object.

    crl_bytes           size of the built-in TSA's DER CRL (one revoked certificate listed)
    fetch_cold_ms       RevocationFetcher.collect for the TSA's chain, the CRL GET over loopback
    fetch_cached_us     the same once cached (every later token of the TSA until nextUpdate)
    check_chain_us      timestamping.revocation.check_chain for one token (signature included)
    check_bundle_ms     check_bundle of a one-token bundle, with and without its CRL

Everything runs in a temporary directory (keys included) on loopback: the built-in TSA served in
a thread, as the tests do.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from service.evidence.bundle import build_bundle  # noqa: E402
from service.evidence.bundle_check import check_bundle  # noqa: E402
from service.evidence.manifest import build_manifest  # noqa: E402
from service.runtime.redis_server import free_port  # noqa: E402
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority  # noqa: E402
from service.timestamping.merkle import MerkleTree, tree_proof_to_json  # noqa: E402
from service.timestamping.revocation import KIND_CRL, RevocationEntry, check_chain  # noqa: E402
from service.timestamping.tsa_crl import revoke  # noqa: E402
from service.timestamping.tsa_query import encode_query  # noqa: E402
from service.timestamping.verify import verify_timestamp  # noqa: E402
from service.usecases.stamping.revocation import RevocationFetcher  # noqa: E402
from service.web.tsa import create_app, serve_in_thread  # noqa: E402
from service.webhooks.ssrf import Allowlist  # noqa: E402

ROUNDS = 200  # in-process timings: enough for a stable median, a few seconds in all
BUNDLE_ROUNDS = 20  # check_bundle also verifies the token: slower per round


def _median(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "tsa"
        port = free_port()
        authority = TimeStampAuthority.open(AuthoritySettings(
            data_dir=data_dir, crl_url=f"http://127.0.0.1:{port}/crl"))
        chain = authority.material.chain
        manifest = build_manifest(image_sha256=hashlib.sha256(b"img").hexdigest(), size=3,
                                  media_type="image/png", generation={},
                                  submitted_at=datetime.now(UTC), external_id=None)
        tree = MerkleTree([manifest.digest])
        reply = authority.respond(encode_query(tree.root, hash_name="sha256", nonce=1,
                                               cert_req=True, policy=None))
        # A revoked certificate of another serial, so the CRL lists one entry.
        other = TimeStampAuthority.open(AuthoritySettings(data_dir=Path(tmp) / "other"))
        revoke(data_dir, other.material.tsa_cert, x509.ReasonFlags.superseded)
        with serve_in_thread(create_app(authority), port=port):
            fetcher = RevocationFetcher(Allowlist.parse(["127.0.0.1"]))
            started = time.perf_counter()
            (row,) = fetcher.collect(chain)
            cold = time.perf_counter() - started
            cached = _median(lambda: fetcher.collect(chain), ROUNDS)
        assert row.kind == KIND_CRL and row.der is not None, row
        gen_time = verify_timestamp(reply, digest=tree.root, hash_alg="sha256",
                                    roots=[chain[-1]]).facts.gen_time
        assert gen_time is not None
        entries = [RevocationEntry(row.cert_sha256, row.kind, row.url, row.der)]
        assert check_chain(chain, entries, gen_time)[0].ok
        check = _median(lambda: check_chain(chain, entries, gen_time), ROUNDS)
        pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in chain)

        def bundle(with_crl: bool) -> bytes:
            return build_bundle(manifest_jcs=manifest.jcs,
                                proof=tree_proof_to_json(tree, manifest.digest, 0),
                                tokens={"builtin": reply}, chains={"builtin": pem},
                                receipt_id="rcp_bench", image_name=None,
                                revocation={"builtin": entries if with_crl else []})

        with_crl, without = bundle(True), bundle(False)
        assert check_bundle(with_crl).valid
        figures = {
            "crl_bytes": len(row.der),
            "fetch_cold_ms": round(cold * 1000, 2),
            "fetch_cached_us": round(cached * 1e6, 1),
            "check_chain_us": round(check * 1e6, 1),
            "check_bundle_ms": {
                "with_crl": round(_median(lambda: check_bundle(with_crl), BUNDLE_ROUNDS) * 1000,
                                  2),
                "without": round(_median(lambda: check_bundle(without), BUNDLE_ROUNDS) * 1000,
                                 2),
            },
        }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
