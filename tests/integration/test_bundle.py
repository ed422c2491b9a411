"""Evidence bundles end to end: real openssl tokens over a real Merkle root, checked by the
bundle's own verify.py run with the system Python in isolated mode (standard library only)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.errors import MalformedInputError
from service.evidence.bundle import build_bundle, safe_name
from service.evidence.generation import normalize_request_metadata
from service.evidence.manifest import build_manifest
from service.timestamping.merkle import MerkleTree, tree_proof_to_json
from tests.support.openssl_pki import make_query

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/usr/local/bin:/bin") or "python3"
TIMEOUT_S = 120


@dataclass
class Evidence:
    image: bytes
    tree: MerkleTree
    manifests: list[bytes]
    proof: dict
    tokens: dict[str, bytes]
    chains: dict[str, str]

    def bundle(self, **overrides: object) -> bytes:
        args: dict = {
            "manifest_jcs": self.manifests[1],
            "proof": self.proof,
            "tokens": self.tokens,
            "chains": self.chains,
            "receipt_id": "rcpt_01TEST",
            "image_name": "lighthouse.png",
        }
        args.update(overrides)
        return build_bundle(**args)


def chain_of(pki) -> str:
    """TSA certificate first, intermediates, root last: the bundle's certs/<tsa>.pem order."""
    return pki.chain_pem.read_text() + pki.root_pem.read_text()


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Evidence:
    from tests.support.openssl_pki import make_openssl_pki

    base = tmp_path_factory.mktemp("bundle-pkis")
    builtin = make_openssl_pki(base / "builtin", intermediate=True)
    other = make_openssl_pki(base / "other", key="rsa2048")
    images = [b"\x89PNG\r\n\x1a\n" + bytes([i]) * 1000 for i in range(3)]
    manifests = []
    for i, image in enumerate(images):
        generation = normalize_request_metadata(
            {"prompt": f"a <script>alert({i})</script> lighthouse", "Seed": str(i), "cfg": 7}
        )
        manifests.append(
            build_manifest(
                image_sha256=hashlib.sha256(image).hexdigest(),
                size=len(image),
                media_type="image/png",
                generation=generation,
                submitted_at=datetime(2026, 1, 27, 10, 0, i, tzinfo=UTC),
                external_id=f"post-{i}",
            )
        )
    tree = MerkleTree([m.digest for m in manifests])
    tokens = {
        "chronoseal-builtin": builtin.reply(make_query(digest=tree.root)),
        "Example TSA/ü": other.reply(make_query(digest=tree.root)),
    }
    chains = {"chronoseal-builtin": chain_of(builtin), "Example TSA/ü": chain_of(other)}
    return Evidence(
        image=images[1],
        tree=tree,
        manifests=[m.jcs for m in manifests],
        proof=tree_proof_to_json(tree, manifests[1].digest, 1),
        tokens=tokens,
        chains=chains,
    )


@pytest.fixture(scope="module")
def bundle_bytes(evidence: Evidence) -> bytes:
    return evidence.bundle()


@pytest.fixture
def bundle_dir(tmp_path: Path, bundle_bytes: bytes, evidence: Evidence) -> Path:
    with zipfile.ZipFile(io.BytesIO(bundle_bytes)) as archive:
        archive.extractall(tmp_path / "bundle")
    (tmp_path / "image.png").write_bytes(evidence.image)
    return tmp_path / "bundle"


def run_verify(bundle_dir: Path, *args: str, env: dict | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-I", "verify.py", *args],
        cwd=bundle_dir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )
    return proc.returncode, proc.stdout + proc.stderr


def image_arg(bundle_dir: Path) -> list[str]:
    return ["--image", str(bundle_dir.parent / "image.png")]


def test_bundle_layout_and_determinism(evidence: Evidence, bundle_bytes: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(bundle_bytes)) as archive:
        names = archive.namelist()
        assert archive.read("manifest.json") == evidence.manifests[1]
        assert json.loads(archive.read("proof.json")) == evidence.proof
        token = archive.read("tokens/chronoseal-builtin.tsr")
        assert token == evidence.tokens["chronoseal-builtin"]
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert names == [
        "manifest.json",
        "proof.json",
        "tokens/Example_TSA__.tsr",
        "tokens/chronoseal-builtin.tsr",
        "certs/Example_TSA__.pem",
        "certs/chronoseal-builtin.pem",
        "verify.py",
        "VERIFY.md",
        "certificate.html",
        "certificate.pdf",
    ]
    assert evidence.bundle() == bundle_bytes


def test_verify_py_accepts_the_bundle_and_says_what_it_checked(bundle_dir: Path) -> None:
    code, out = run_verify(bundle_dir, *image_arg(bundle_dir))
    assert code == 0, out
    assert "[PASS] image: SHA-256 of image.png equals manifest.json image.sha256" in out
    assert "[PASS] proof: leaf SHA-256(0x00 || manifest digest) equals proof.json leaf" in out
    assert "[PASS] proof: audit path (2 hashes) from leaf 1 of 3 leads to proof.json root" in out
    for name in ("chronoseal-builtin", "Example_TSA__"):
        assert f"[PASS] {name}: openssl ts -verify" in out
    assert out.count("bundled root certificate SHA-256 fingerprint") == 2
    assert "[FAIL]" not in out
    last = out.strip().splitlines()[-1]
    # These openssl TSAs publish no CRL: that, and only that, is said to be unchecked.
    assert last.startswith("RESULT: VALID") and "the image" not in last
    assert "NOT CHECKED: revocation of Example_TSA__'s certificate(s) 1 (no revocation data" \
        in last


def test_without_image_the_image_is_reported_unchecked(bundle_dir: Path) -> None:
    code, out = run_verify(bundle_dir)
    assert code == 0, out
    assert "[NOT CHECKED] the image" in out
    # The last line, the one a lay reader takes away, says the image was not checked.
    last = out.strip().splitlines()[-1]
    assert last.startswith("RESULT: VALID") and "NOT CHECKED: the image" in last


def test_a_pass_line_carries_only_the_verdict(bundle_dir: Path) -> None:
    code, out = run_verify(bundle_dir, *image_arg(bundle_dir))
    assert code == 0, out
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("[PASS]") and "openssl ts -verify" in line:
            assert lines[i + 1].strip() == "Verification: OK"


def test_a_changed_image_is_invalid(bundle_dir: Path) -> None:
    image = bundle_dir.parent / "image.png"
    image.write_bytes(image.read_bytes() + b"\x00")
    code, out = run_verify(bundle_dir, *image_arg(bundle_dir))
    assert code == 1, out
    assert "[FAIL] image" in out and "RESULT: INVALID" in out


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_changed_manifest_byte_is_invalid(bundle_dir: Path) -> None:
    manifest = bundle_dir / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"post-1"', b'"post-2"'))
    code, out = run_verify(bundle_dir)
    assert code == 1, out
    assert "[FAIL] proof: leaf" in out


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["audit_path"].__setitem__(0, "00" + p["audit_path"][0][2:]),
        lambda p: p["audit_path"].__setitem__(1, p["audit_path"][1][:-1] + "0"),
        lambda p: p.__setitem__("leaf_index", 0),
        lambda p: p.__setitem__("leaf_index", 2),
        lambda p: p.__setitem__("tree_size", 2),  # (4 would still hold: size is not stamped)
        lambda p: p["audit_path"].pop(),
        lambda p: p.__setitem__("root", "00" * 32),
    ],
)
def test_a_changed_proof_is_invalid(bundle_dir: Path, evidence: Evidence, change) -> None:
    proof = json.loads(json.dumps(evidence.proof))
    change(proof)
    assert proof != evidence.proof
    (bundle_dir / "proof.json").write_text(json.dumps(proof))
    code, out = run_verify(bundle_dir)
    assert code == 1, out
    assert "[FAIL] proof" in out


@pytest.mark.parametrize("where", ["signature", "gen_time"])
def test_a_changed_token_byte_is_invalid(bundle_dir: Path, evidence: Evidence, where: str) -> None:
    token = bundle_dir / "tokens" / "chronoseal-builtin.tsr"
    der = token.read_bytes()
    offset = len(der) - 3 if where == "signature" else der.index(b"Z\x30") - 1
    flip(token, offset)
    code, out = run_verify(bundle_dir)
    assert code == 1, out
    assert "[FAIL] chronoseal-builtin: openssl ts -verify" in out
    assert "[PASS] Example_TSA__: openssl ts -verify" in out


def test_a_token_from_a_tsa_outside_your_roots_is_invalid(bundle_dir: Path, openssl_pki) -> None:
    stranger = openssl_pki(key="ec-p384")
    code, out = run_verify(bundle_dir, "--ca", str(stranger.root_pem))
    assert code == 1, out
    assert "trusting your --ca" in out


def test_your_own_root_is_the_stronger_check(bundle_dir: Path, evidence: Evidence) -> None:
    chain = evidence.chains["chronoseal-builtin"]
    root = chain[chain.rindex("-----BEGIN CERTIFICATE-----") :]
    (bundle_dir.parent / "roots.pem").write_text(root)
    # Only the builtin TSA's root is trusted: the other TSA's token must now fail.
    code, out = run_verify(bundle_dir, "--ca", str(bundle_dir.parent / "roots.pem"))
    assert code == 1, out
    assert "[PASS] chronoseal-builtin: openssl ts -verify" in out
    assert "[FAIL] Example_TSA__: openssl ts -verify" in out


def test_a_missing_token_chain_or_no_tokens_is_invalid(bundle_dir: Path) -> None:
    (bundle_dir / "certs" / "Example_TSA__.pem").unlink()
    assert run_verify(bundle_dir)[0] == 1
    shutil.rmtree(bundle_dir / "tokens")
    code, out = run_verify(bundle_dir)
    assert code == 1 and "[FAIL] the bundle holds at least one timestamp token" in out


def test_without_openssl_the_input_is_unusable(bundle_dir: Path) -> None:
    code, out = run_verify(bundle_dir, env={"PATH": str(bundle_dir)})
    assert code == 2, out
    assert "openssl" in out


def test_verify_md_commands_reproduce_every_expected_value(bundle_dir: Path) -> None:
    text = (bundle_dir / "VERIFY.md").read_text()
    script = "\n".join(
        line[4:] for line in text.splitlines() if line.startswith("    ")
    ).replace("IMAGE_FILE", "../image.png")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=bundle_dir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={"PATH": os.environ["PATH"]},
    )
    assert proc.returncode == 0, proc.stderr
    expected = re.findall(r"^Expected[^:\n]*: `([^`]+)`", text, flags=re.MULTILINE)
    assert len(expected) >= 2 + 2 + 2 * 2  # digest, leaf, two steps, per TSA fingerprint + OK
    for value in expected:
        assert value.replace(":", "").lower() in proc.stdout.replace(":", "").lower(), value
    assert proc.stdout.count("Verification: OK") == 2


def test_certificate_escapes_what_the_submitter_wrote(bundle_dir: Path) -> None:
    html = (bundle_dir / "certificate.html").read_text()
    assert "<script>" not in html
    assert "a &lt;script&gt;alert(1)&lt;/script&gt; lighthouse" in html
    assert "Content-Security-Policy" in html
    assert hashlib.sha256(b"\x89PNG\r\n\x1a\n" + b"\x01" * 1000).hexdigest() in html
    assert "chronoseal-builtin" in html and "UTC" in html


def test_certificate_names_who_signed(bundle_dir: Path) -> None:
    html = (bundle_dir / "certificate.html").read_text()
    assert "signed by CN=Test TSA ec-p256,O=Chronoseal Test" in html


@pytest.mark.parametrize(
    ("tsa", "name"),
    [("digicert", "digicert"), ("Example TSA/ü", "Example_TSA__"), ("../../etc", "_.._etc"),
     ("-rf", "rf"), ("...", "tsa"), ("a" * 100, "a" * 64)],
)
def test_tsa_names_become_safe_file_names(tsa: str, name: str) -> None:
    assert safe_name(tsa) == name


def test_a_proof_for_another_manifest_is_refused(evidence: Evidence) -> None:
    with pytest.raises(MalformedInputError, match="proof"):
        evidence.bundle(manifest_jcs=evidence.manifests[0])
    with pytest.raises(MalformedInputError, match="proof"):
        evidence.bundle(proof={**evidence.proof, "audit_path": []})


def test_every_token_needs_its_chain_ending_in_a_root(evidence: Evidence) -> None:
    with pytest.raises(MalformedInputError, match="no certificate chain"):
        evidence.bundle(chains={"chronoseal-builtin": evidence.chains["chronoseal-builtin"]})
    chain = evidence.chains["chronoseal-builtin"]
    without_root = chain[: chain.rindex("-----BEGIN CERTIFICATE-----")]
    with pytest.raises(MalformedInputError, match="root"):
        evidence.bundle(chains={**evidence.chains, "chronoseal-builtin": without_root})


def test_names_that_collide_after_sanitising_are_refused(evidence: Evidence) -> None:
    token, chain = evidence.tokens["chronoseal-builtin"], evidence.chains["chronoseal-builtin"]
    with pytest.raises(MalformedInputError, match="map to"):
        evidence.bundle(tokens={"a/b": token, "a:b": token}, chains={"a/b": chain, "a:b": chain})


def test_garbage_token_is_refused(evidence: Evidence) -> None:
    with pytest.raises(MalformedInputError, match="unreadable"):
        evidence.bundle(tokens={**evidence.tokens, "chronoseal-builtin": b"\x30\x03garbage"})


@pytest.mark.parametrize("option", ["--image", "--ca"])
def test_an_unreadable_option_file_is_unusable_input(bundle_dir: Path, option: str) -> None:
    code, out = run_verify(bundle_dir, option, str(bundle_dir / "missing"))
    assert code == 2, out
    assert "RESULT: NOT VERIFIED" in out


@pytest.mark.parametrize("content", [b"[]", b"{not json", b'{"image":"x","v":1}', b""])
def test_a_mangled_manifest_is_invalid_not_a_crash(bundle_dir: Path, content: bytes) -> None:
    (bundle_dir / "manifest.json").write_bytes(content)
    code, out = run_verify(bundle_dir, *image_arg(bundle_dir))
    assert code == 1, out
    assert "Traceback" not in out and "RESULT: INVALID" in out
