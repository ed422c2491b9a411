"""Time verifying a bundle with RFC 4998 renewals; the last line printed is one JSON object.

A format 2 bundle (one openssl TSA, certificate valid one day) with RENEWALS archive timestamps
(openssl TSA valid a year) chained onto its token, verified "two days later" three ways:

    check_bundle_ms      service.evidence.bundle_check.check_bundle, in-process (POST /v1/verify)
    cli_verify_ms        `chronoseal verify BUNDLE --at ...` as a process (Python start included)
    verify_py_ms         the bundle's own verify.py with the system python3 (openssl per step)
    *_plain_ms           the same bundle without its evidence records, verified today
Each figure is {"wall": ms, "cpu": ms}, the median of REPEATS runs.

Keys live in a temporary directory removed afterwards; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.evidence.bundle import build_bundle  # noqa: E402
from service.evidence.bundle_check import check_bundle  # noqa: E402
from service.timestamping import ers  # noqa: E402
from service.timestamping.batch_head import build_batch_head, head_imprint  # noqa: E402
from service.timestamping.merkle import MerkleTree, tree_proof_to_json  # noqa: E402
from tests.support.openssl_pki import make_openssl_pki, make_query  # noqa: E402

RENEWALS = 3  # archive timestamps in the chain: decades of renewals at today's certificate lives
REPEATS = 5  # median of this many runs per figure


def build(tmp: Path, renewals: int) -> tuple[bytes, bytes]:
    """(bundle with renewals, the same without)."""
    short = make_openssl_pki(tmp / "short", not_after_days=1)
    archive = make_openssl_pki(tmp / "archive")
    manifests = [json.dumps({"v": 1, "image": {"sha256": f"{i:064x}"}}).encode() for i in range(8)]
    tree = MerkleTree([hashlib.sha256(m).digest() for m in manifests])
    head = build_batch_head(tree.root, tree.size, "bat_BENCH", datetime.now(UTC))
    token = short.reply(make_query(digest=head_imprint(head)))
    chain = short.chain_pem.read_text() + short.root_pem.read_text()
    args = dict(manifest_jcs=manifests[3], tokens={"tsa": token}, chains={"tsa": chain},
                proof=tree_proof_to_json(tree, hashlib.sha256(manifests[3]).digest(), 3),
                receipt_id="rcpt_BENCH", image_name=None, batch_head=head)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    certs = [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(chain.encode())]
    covered, leaf, atss = None, ers.data_object_hashes(token, certs, []), []
    archive_pem = archive.chain_pem.read_text() + archive.root_pem.read_text()
    for _ in range(renewals):
        others = [[hashlib.sha256(b"%d-%d" % (i, len(atss))).digest()] for i in range(999)]
        built = ers.build_tree([leaf, *others])  # one renewal covers a thousand records
        reply = archive.reply(make_query(digest=built.root))
        atss.append(ers.ArchiveTimeStamp(built.reduced(0), ers.token_of(reply)))
        covered = ers.sha256(atss[-1].token)
        leaf = [covered]
    record = (ers.encode_record(atss), [{"tsa": "archive", "chain_pem": archive_pem}] * renewals)
    return build_bundle(**args, evidence_records={"tsa": record}), build_bundle(**args)


def median_ms(fn) -> dict[str, float]:
    """Median wall and CPU milliseconds (CPU of this process and its children: on a loaded
    machine wall time measures the neighbours, CPU time the work)."""
    wall, cpu = [], []
    for _ in range(REPEATS):
        before = _cpu()
        started = time.perf_counter()
        fn()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((_cpu() - before) * 1000)
    return {"wall": round(statistics.median(wall), 1), "cpu": round(statistics.median(cpu), 1)}


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renewals", type=int, default=RENEWALS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        renewed, plain = build(tmp, args.renewals)
        later = datetime.now(UTC) + timedelta(days=2)
        at = later.strftime("%Y-%m-%dT%H:%M:%S")
        figures: dict[str, object] = {"renewals": args.renewals}
        for label, data, when in (("", renewed, later), ("_plain", plain, None)):
            assert check_bundle(data, now=when).valid
            path = tmp / f"bundle{label}.zip"
            path.write_bytes(data)
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(tmp / f"dir{label}")
            extra = ["--at", at] if when else []
            figures[f"check_bundle{label}_ms"] = median_ms(lambda d=data, w=when:
                                                           check_bundle(d, now=w))
            figures[f"cli_verify{label}_ms"] = median_ms(lambda p=path, e=extra: subprocess.run(
                [sys.executable, "-m", "service.cli", "verify", str(p), *e], check=True,
                capture_output=True, cwd=REPO))
            figures[f"verify_py{label}_ms"] = median_ms(lambda d=tmp / f"dir{label}", e=extra:
                                                        subprocess.run(
                ["python3", "verify.py", *e], check=True, capture_output=True, cwd=d))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
