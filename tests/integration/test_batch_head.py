"""Proof format 2: the tokens imprint SHA-256(batch-head.json), so the tree size is signed.

All three verifiers are run on real openssl tokens: check_bundle (POST /v1/verify and
`chronoseal verify`), the bundle's own verify.py, and VERIFY.md's commands. Format 1 bundles
(imprint = root, no head; test_bundle.py's `evidence`) keep verifying with the same code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.errors import MalformedInputError
from service.evidence.bundle import build_bundle
from service.evidence.bundle_check import check_bundle
from service.evidence.facts import BundleFacts, audit_steps
from service.evidence.instructions import render_verify_md
from service.evidence.templates.verify import token_facts
from service.timestamping.batch_head import build_batch_head, head_imprint, parse_batch_head
from service.timestamping.merkle import MerkleTree, tree_proof_to_json
from tests.integration import test_bundle as _bundle_tests
from tests.integration.test_bundle import TIMEOUT_S, Evidence, chain_of, run_verify
from tests.integration.test_bundle_check import rezip
from tests.support.openssl_pki import OpenSSLPKI, make_openssl_pki, make_query

evidence = _bundle_tests.evidence  # format 1: two openssl TSAs over the root (test_bundle.py)
CLOSED = datetime(2026, 12, 1, 23, 0, 5, tzinfo=UTC)
LEAVES = 5  # leaf 3 also verifies in trees of 6..8, leaf 4 as leaf 2 of 3 or 8 of 9 (format 1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> OpenSSLPKI:
    return make_openssl_pki(tmp_path_factory.mktemp("head-pki"), intermediate=True)


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    return MerkleTree([hashlib.sha256(bytes([i])).digest() for i in range(LEAVES)])


def headed_bundle(pki: OpenSSLPKI, tree: MerkleTree, leaf: int, manifest: bytes) -> bytes:
    """A format 2 bundle for leaf `leaf`: the manifest is any bytes whose digest is that leaf."""
    head = build_batch_head(tree.root, tree.size, "bat_01HEADTEST", CLOSED)
    token = pki.reply(make_query(digest=head_imprint(head)))
    return build_bundle(manifest_jcs=manifest,
                        proof=tree_proof_to_json(tree, hashlib.sha256(manifest).digest(), leaf),
                        tokens={"tsa": token}, chains={"tsa": chain_of(pki)},
                        receipt_id="rcpt_HEAD", image_name=None, batch_head=head)


@pytest.fixture(scope="module")
def manifests() -> list[bytes]:
    """Five v1 manifests; the tree of the fixture above is rebuilt over their digests."""
    return [json.dumps({"v": 1, "image": {"sha256": f"{i:064x}"}}).encode() for i in range(LEAVES)]


@pytest.fixture(scope="module")
def real_tree(manifests: list[bytes]) -> MerkleTree:
    return MerkleTree([hashlib.sha256(m).digest() for m in manifests])


def extract(data: bytes, where: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(where)
    return where


def run_verify_md(bundle_dir: Path, text: str, tokens: int = 1) -> tuple[bool, str]:
    """Run VERIFY.md's commands; True iff every expected value appears in their output."""
    script = "\n".join(line[4:] for line in text.splitlines() if line.startswith("    "))
    proc = subprocess.run(["bash", "-uo", "pipefail", "-c", script.replace("IMAGE_FILE",
                                                                           "manifest.json")],
                          cwd=bundle_dir, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={"PATH": os.environ["PATH"]})
    expected = re.findall(r"^Expected[^:\n]*: `([^`]+)`(?: and `([^`]+)`)?", text, re.MULTILINE)
    values = [v for pair in expected for v in pair if v]
    out = proc.stdout.replace(":", "").lower()
    missing = [v for v in values if v.replace(":", "").lower() not in out]
    ok = not missing and proc.stdout.count("Verification: OK") == tokens
    return ok, f"{missing}\n{proc.stdout}"


def test_a_head_is_canonical_and_read_back_exactly(tree: MerkleTree) -> None:
    head = build_batch_head(tree.root, tree.size, "bat_x", CLOSED)
    assert head == (b'{"batch_id":"bat_x","closed_at":"2026-12-01T23:00:05Z","hash":"sha256",'
                    b'"root":"' + tree.root.hex().encode() + b'","tree_size":5,'
                    b'"type":"chronoseal.batch-head","v":1}')
    parsed = parse_batch_head(head)
    assert (parsed.root, parsed.tree_size, parsed.closed_at) == (tree.root, 5, CLOSED)
    assert parsed.imprint == hashlib.sha256(head).digest()
    for bad in (head.replace(b":5,", b":5.0,"), head.replace(b"{", b"{ "), b"[]", b"{}",
                head.replace(b'"v":1', b'"v":2'), b"x" * 2000):
        with pytest.raises(MalformedInputError):
            parse_batch_head(bad)


def test_a_format_2_bundle_verifies_in_all_three_verifiers(
        pki: OpenSSLPKI, real_tree: MerkleTree, manifests: list[bytes], tmp_path: Path) -> None:
    data = headed_bundle(pki, real_tree, 3, manifests[3])
    verdict = check_bundle(data)
    assert verdict.valid, verdict.reasons
    assert [c.name for c in verdict.checks if c.name == "batch-head"] == ["batch-head"]
    token = next(c for c in verdict.checks if c.name == "token:tsa")
    assert "over SHA-256 of batch-head.json" in token.detail
    bundle_dir = extract(data, tmp_path / "b")
    assert json.loads((bundle_dir / "proof.json").read_text())["v"] == 2
    code, out = run_verify(bundle_dir)
    assert code == 0, out
    assert "[PASS] batch head: states the root the audit path leads to" in out
    assert "token imprint equals SHA-256(batch-head.json)" in out
    ok, why = run_verify_md(bundle_dir, (bundle_dir / "VERIFY.md").read_text())
    assert ok, why


@pytest.mark.parametrize(("leaf", "index", "size"), [(3, 3, 6), (3, 3, 8), (4, 2, 3), (4, 8, 9)])
def test_a_changed_tree_size_or_leaf_index_fails_all_three_verifiers(
        pki: OpenSSLPKI, real_tree: MerkleTree, manifests: list[bytes], tmp_path: Path,
        leaf: int, index: int, size: int) -> None:
    """Each change keeps the audit path valid (format 1 could not tell); the head says 5."""
    data = headed_bundle(pki, real_tree, leaf, manifests[leaf])

    def tamper(files: dict[str, bytes]) -> None:
        proof = json.loads(files["proof.json"])
        files["proof.json"] = json.dumps({**proof, "leaf_index": index, "tree_size": size}).encode()

    bad = rezip(data, tamper)
    verdict = check_bundle(bad)
    assert not verdict.valid
    assert any(r.startswith("batch-head:") for r in verdict.reasons), verdict.reasons
    assert not any(r.startswith("proof:") for r in verdict.reasons)  # the path alone still holds
    bundle_dir = extract(bad, tmp_path / "b")
    code, out = run_verify(bundle_dir)
    assert code == 1, out
    assert "[FAIL] batch head: states the root the audit path leads to" in out
    # VERIFY.md as someone who changed proof.json would rewrite it: its commands then show
    # the head's true size, not the one the document expects.
    proof = json.loads((bundle_dir / "proof.json").read_text())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        head = parse_batch_head(archive.read("batch-head.json"))
    path = [bytes.fromhex(p) for p in proof["audit_path"]]
    facts = BundleFacts(
        receipt_id="rcpt_HEAD", image_name=None, manifest=json.loads(manifests[leaf]),
        manifest_digest=hashlib.sha256(manifests[leaf]).hexdigest(), proof=proof,
        steps=audit_steps(bytes.fromhex(proof["leaf"]), index, size, path), timestamps=(),
        batch_head=head)
    ok, _ = run_verify_md(bundle_dir, render_verify_md(facts), tokens=0)
    assert not ok
    genuine, why = run_verify_md(bundle_dir, render_verify_md(replace(
        facts, proof={**proof, "leaf_index": leaf, "tree_size": LEAVES})), tokens=0)
    assert genuine, why


def test_format_1_bundles_keep_verifying_and_show_why_heads_exist(
        evidence: Evidence, tmp_path: Path) -> None:
    """test_bundle's evidence imprints the root (format 1): valid, and size 4 also passes."""
    data = evidence.bundle()
    assert check_bundle(data).valid
    code, out = run_verify(extract(data, tmp_path / "old"))
    assert code == 0 and "proof format 1" in out, out
    forged = rezip(data, lambda f: f.update({"proof.json": json.dumps(
        {**json.loads(f["proof.json"]), "tree_size": 4}).encode()}))
    assert check_bundle(forged).valid  # the weakness format 2 removes


@pytest.mark.parametrize("change", ["drop head", "drop version", "other head", "v1 with head"])
def test_a_head_that_is_missing_or_swapped_is_invalid(
        pki: OpenSSLPKI, real_tree: MerkleTree, manifests: list[bytes], tmp_path: Path,
        change: str) -> None:
    data = headed_bundle(pki, real_tree, 3, manifests[3])

    def apply(files: dict[str, bytes]) -> None:
        proof = json.loads(files["proof.json"])
        if change == "drop head":
            del files["batch-head.json"]
        elif change == "drop version":  # a downgrade to format 1: the imprint is not the root
            files["proof.json"] = json.dumps({k: v for k, v in proof.items() if k != "v"}).encode()
            del files["batch-head.json"]
        elif change == "other head":  # same root and size, another batch id: another imprint
            files["batch-head.json"] = files["batch-head.json"].replace(b"HEADTEST", b"HEADTESU")
        else:
            files["proof.json"] = json.dumps({k: v for k, v in proof.items() if k != "v"}).encode()

    bad = rezip(data, apply)
    assert not check_bundle(bad).valid
    code, out = run_verify(extract(bad, tmp_path / "b"))
    assert code == 1, out


def test_the_head_must_match_the_proof_to_be_bundled(
        pki: OpenSSLPKI, real_tree: MerkleTree, manifests: list[bytes]) -> None:
    head = build_batch_head(real_tree.root, real_tree.size + 1, "bat_x", CLOSED)
    token = pki.reply(make_query(digest=head_imprint(head)))
    assert token_facts(token).serial
    with pytest.raises(MalformedInputError, match="batch head"):
        build_bundle(manifest_jcs=manifests[0],
                     proof=tree_proof_to_json(real_tree, hashlib.sha256(manifests[0]).digest(), 0),
                     tokens={"tsa": token}, chains={"tsa": chain_of(pki)},
                     receipt_id="r", image_name=None, batch_head=head)
