"""A bundle is judged alike by `chronoseal verify` (check_bundle) and by its own verify.py:
the untouched bundle passes, and every kind of tampering fails with a reason naming the part."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import MalformedInputError
from service.evidence.bundle_check import MAX_MEMBER_BYTES, check_bundle
from tests.integration import test_bundle as _bundle_tests
from tests.integration.test_bundle import Evidence, chain_of, run_verify
from tests.support.openssl_pki import make_query

# The evidence of test_bundle.py (two openssl TSAs, one with an intermediate; 3 leaves).
evidence = _bundle_tests.evidence
CLI = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[2]


def rezip(data: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    """The bundle with `change` applied to its files (a dict path -> bytes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    change(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def flip_byte(files: dict[str, bytes], name: str, offset: int) -> None:
    data = bytearray(files[name])
    data[offset] ^= 0x01
    files[name] = bytes(data)


def _manifest(files: dict[str, bytes]) -> None:
    files["manifest.json"] = files["manifest.json"].replace(b'"post-1"', b'"post-2"')


def _proof(files: dict[str, bytes]) -> None:
    proof = json.loads(files["proof.json"])
    proof["audit_path"][0] = "00" + proof["audit_path"][0][2:]
    files["proof.json"] = json.dumps(proof).encode()


def _token(files: dict[str, bytes]) -> None:
    name = "tokens/chronoseal-builtin.tsr"
    flip_byte(files, name, len(files[name]) - 3)  # inside the signature


@pytest.fixture(scope="module")
def stranger_bundle(evidence: Evidence, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A well-formed bundle whose one token comes from a TSA nobody configured."""
    from tests.support.openssl_pki import make_openssl_pki

    pki = make_openssl_pki(tmp_path_factory.mktemp("stranger"), key="ec-p384")
    token = pki.reply(make_query(digest=evidence.tree.root))
    return evidence.bundle(tokens={"chronoseal-builtin": token},
                           chains={"chronoseal-builtin": chain_of(pki)})


@pytest.fixture(scope="module")
def roots_pem(evidence: Evidence, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two genuine TSAs' roots: what a careful verifier passes as --ca."""
    path = tmp_path_factory.mktemp("roots") / "roots.pem"
    path.write_text("".join(c[c.rindex("-----BEGIN CERTIFICATE-----"):]
                            for c in evidence.chains.values()))
    return path


def _roots(path: Path):
    from cryptography import x509

    return x509.load_pem_x509_certificates(path.read_bytes())


def test_a_bundle_verifies_with_the_bundled_roots_and_says_so(evidence: Evidence) -> None:
    verdict = check_bundle(evidence.bundle(),
                           image_sha256=hashlib.sha256(evidence.image).hexdigest())
    assert verdict.valid, verdict.reasons
    assert verdict.trust == "bundled roots" and verdict.image_checked
    assert [s.tsa for s in verdict.stamps] == ["Example_TSA__", "chronoseal-builtin"]
    assert all(s.bundled_root_trusted and s.trusted_root_sha256 for s in verdict.stamps)
    assert {c.name for c in verdict.checks} >= {"manifest", "image", "leaf", "proof"}


def test_with_given_roots_only_those_are_trusted(evidence: Evidence, roots_pem: Path,
                                                 stranger_bundle: bytes) -> None:
    assert check_bundle(evidence.bundle(), roots=_roots(roots_pem)).valid
    assert check_bundle(stranger_bundle).valid  # consistent with itself...
    verdict = check_bundle(stranger_bundle, roots=_roots(roots_pem))  # ...but not trusted
    assert not verdict.valid
    assert any(r.startswith("token:chronoseal-builtin:") for r in verdict.reasons)


TAMPERED = {
    "image": ("image", None),
    "manifest": ("leaf", _manifest),
    "proof": ("proof", _proof),
    "token": ("token:chronoseal-builtin", _token),
    "untrusted TSA": ("token:chronoseal-builtin", None),
}


@pytest.mark.parametrize("kind", TAMPERED)
def test_tampering_is_rejected_by_the_cli_and_by_verify_py(
    kind: str, evidence: Evidence, stranger_bundle: bytes, roots_pem: Path, tmp_path: Path,
) -> None:
    failed_check, change = TAMPERED[kind]
    image = evidence.image + (b"\x00" if kind == "image" else b"")
    data = stranger_bundle if kind == "untrusted TSA" else evidence.bundle()
    if change is not None:
        data = rezip(data, change)
    (tmp_path / "b.zip").write_bytes(data)
    (tmp_path / "image.png").write_bytes(image)
    cli = subprocess.run([*CLI, "verify", str(tmp_path / "b.zip"), "--image",
                          str(tmp_path / "image.png"), "--ca", str(roots_pem), "--json"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    verdict = json.loads(cli.stdout)
    assert not verdict["valid"]
    assert any(r.startswith(failed_check + ":") for r in verdict["reasons"]), verdict["reasons"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path / "bundle")
    code, out = run_verify(tmp_path / "bundle", "--image", str(tmp_path / "image.png"),
                           "--ca", str(roots_pem))
    assert code == 1, out
    word = {"leaf": "proof", "token:chronoseal-builtin": "chronoseal-builtin"}.get(
        failed_check, failed_check)
    assert f"[FAIL] {word}" in out, out


def test_the_cli_prints_a_summary_a_person_can_read(evidence: Evidence, tmp_path: Path) -> None:
    (tmp_path / "b.zip").write_bytes(evidence.bundle())
    digest = hashlib.sha256(evidence.image).hexdigest()
    out = subprocess.run([*CLI, "verify", str(tmp_path / "b.zip"), "--digest", digest],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert text.startswith("VALID evidence bundle")
    assert f"the image you gave with SHA-256 {digest}" in text
    assert "timestamp chronoseal-builtin: valid, 20" in text and "UTC, signed by CN=" in text
    assert "trusted: the root certificate shipped in the bundle" in text
    assert text.count("SHA-256 ") >= 3
    # The record is a table: each field on its own line, then where its value came from.
    lines = text.splitlines()
    [row] = [i for i, line in enumerate(lines) if line.split()[:1] == ["prompt"]]
    assert "a <script>" in lines[row]
    assert any(line.strip() == "(stated by the submitter)" for line in lines[row + 1:row + 4])


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--digest", "abc"], "--digest"), (["--ca", "/nonexistent.pem"], "nonexistent")],
)
def test_unusable_input_exits_2(evidence: Evidence, tmp_path: Path, args, message) -> None:
    (tmp_path / "b.zip").write_bytes(evidence.bundle())
    out = subprocess.run([*CLI, "verify", str(tmp_path / "b.zip"), *args],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2 and message in out.stderr, out.stderr


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04" + b"\x00" * 40])
def test_not_a_zip_is_unusable(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "b.zip").write_bytes(data)
    out = subprocess.run([*CLI, "verify", str(tmp_path / "b.zip")],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2, out.stdout + out.stderr


def test_an_unknown_compression_method_is_unusable_input() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("manifest.json", b"{}")
    data = bytearray(out.getvalue())
    data[8] = data[data.index(b"PK\x01\x02") + 10] = 99  # local and central method fields
    with pytest.raises(MalformedInputError, match="not a readable"):
        check_bundle(bytes(data))


def test_a_zip_bomb_is_refused_before_inflating() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", b"\x00" * (MAX_MEMBER_BYTES + 1))
    with pytest.raises(MalformedInputError, match="larger"):
        check_bundle(out.getvalue())


def test_missing_parts_are_invalid_not_a_crash(evidence: Evidence) -> None:
    for name in ("manifest.json", "proof.json", "certs/chronoseal-builtin.pem"):
        data = rezip(evidence.bundle(), lambda f, n=name: f.pop(n))
        verdict = check_bundle(data)
        assert not verdict.valid and verdict.reasons, name
    verdict = check_bundle(rezip(evidence.bundle(), lambda f: [
        f.pop(n) for n in list(f) if n.startswith("tokens/")]))
    assert "tokens: the bundle holds no timestamp token" in verdict.reasons


def test_the_certificate_is_self_contained_and_printable(evidence: Evidence) -> None:
    with zipfile.ZipFile(io.BytesIO(evidence.bundle())) as archive:
        html = archive.read("certificate.html").decode()
    for external in ("<script", "<link", "url(", "@import", "http:", "https:"):
        assert external not in html, external
    assert not re.search(r"""src=["'](?!data:)""", html)  # pictures inline, nothing fetched
    assert "@media print" in html and "@page" in html
    assert "How an expert verifies this" in html and "python3 verify.py" in html
    assert html.count("openssl ts -verify") == len(evidence.tokens)
    assert evidence.proof["root"] in html and evidence.proof["leaf"] in html
    assert "step 2 of 2" in html  # the audit path folded step by step (leaf 1 of 3: two steps)
    assert "steps above" not in html  # every step the page mentions is on the page


@pytest.fixture(scope="module")
def stored_bundle(evidence: Evidence) -> bytes:
    """The bundle with its files stored, not deflated, so flipped bytes reach the contents."""
    return rezip(evidence.bundle(), lambda files: None)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_gives_a_verdict_or_unusable_input(stored_bundle: bytes, data) -> None:
    damaged = bytearray(stored_bundle)
    for _ in range(data.draw(st.integers(1, 4))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] ^= data.draw(st.integers(1, 255))
    try:
        verdict = check_bundle(bytes(damaged), image_sha256="00" * 32)
    except MalformedInputError:
        return
    assert not verdict.valid and verdict.reasons  # the image never matches: never valid
    json.dumps(verdict.as_dict())


def test_a_chain_ending_below_a_root_needs_partial_chain(
        evidence: Evidence, tmp_path: Path) -> None:
    """Bundled certificates that stop at an intermediate anchor nothing unless asked to."""
    from service.cli import main
    from tests.support.openssl_pki import make_openssl_pki

    pki = make_openssl_pki(tmp_path / "pki", key="ec-p256", intermediate=True)
    token = pki.reply(make_query(digest=evidence.tree.root))
    full = pki.chain_pem.read_text() + pki.root_pem.read_text()
    bundle = rezip(evidence.bundle(tokens={"partial": token}, chains={"partial": full}),
                   lambda files: files.update({"certs/partial.pem": pki.chain_pem.read_bytes()}))
    strict = check_bundle(bundle)
    assert not strict.valid
    assert any("partial chain" in r for r in strict.reasons), strict.reasons
    partial = check_bundle(bundle, partial_chain=True)
    assert partial.valid, partial.reasons
    assert partial.stamps[0].trusted_root == "CN=Test Intermediate CA,O=Chronoseal Test"
    (tmp_path / "b.zip").write_bytes(bundle)
    assert main(["verify", str(tmp_path / "b.zip")]) == 1
    assert main(["verify", str(tmp_path / "b.zip"), "--partial-chain"]) == 0
