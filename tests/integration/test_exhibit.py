"""The exhibit: certificate.html and certificate.pdf in a bundle, read back as a person reads them.

The PDF WeasyPrint made is read with pdftotext; the HTML is printed by headless Chromium and
read the same way. Each test asserts the facts a court needs are on the page.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import sys
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from service.evidence import exhibit_pdf
from service.evidence.bundle import Exhibit, HistoryEntry
from service.evidence.certificate import render_certificate
from service.evidence.comparison_page import Comparison, comparison_pdf, render_comparison
from service.evidence.facts import AncestorFacts, Authority, BundleFacts, TimestampFacts
from service.evidence.generation import merge_generation, normalize_request_metadata
from service.evidence.manifest import build_manifest, manifest_digest
from service.evidence.templates.verify import token_facts
from service.timestamping.merkle import tree_proof_to_json
from tests.integration import test_bundle as _bundle_tests
from tests.integration.test_bundle import Evidence
from tests.support.chromium import pdf_pages, pdf_text, print_to_pdf, squeezed
from tests.support.images import png_bytes

evidence = _bundle_tests.evidence  # two openssl TSAs over a real Merkle root (3 leaves)
AUTHORITIES = {"chronoseal-builtin": Authority("Chronoseal's own TSA", True),
               "Example TSA/ü": Authority("Example Trust Services", False)}
URL = "https://stamps.example.org/r/rcpt_01TEST"


def on(text: str, phrase: str) -> bool:
    """`phrase` is on the page, however the printer wrapped its lines."""
    return squeezed(phrase) in squeezed(text)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def exhibit_bundle(evidence: Evidence, language: str = "en", image: bytes | None = None
                   ) -> dict[str, bytes]:
    return members(evidence.bundle(exhibit=Exhibit(
        image=image, authorities=AUTHORITIES, verify_url=URL, language=language)))


@pytest.fixture(scope="module")
def english(evidence: Evidence) -> dict[str, bytes]:
    return exhibit_bundle(evidence, image=png_bytes(300, 200, (20, 120, 200)))


def test_the_pdf_states_the_key_facts(evidence: Evidence, english: dict[str, bytes]) -> None:
    pdf = english["certificate.pdf"]
    pages, size = pdf_pages(pdf)
    assert "595" in size and "841" in size  # A4 in points
    text = pdf_text(pdf)
    flat = squeezed(text)
    digest = hashlib.sha256(evidence.image).hexdigest()
    assert digest in flat
    assert on(text, "lighthouse.png")  # the file name sent at registration
    assert on(text, "Chronoseal's own TSA") and on(text, "Example Trust Services")
    assert on(text, "run by this service's operator, with a root certificate the operator")
    assert on(text, "independent of this service")
    assert on(text, "existed no later than")
    assert on(text, "who made the image (authorship)") and on(text, "original")
    assert on(text, "Prompt") and on(text, "a <script>alert(1)</script> lighthouse")  # the record
    assert on(text, "stated in the request")
    assert on(text, "python3 verify.py --image IMAGE_FILE")
    assert text.count("openssl ts -verify") == len(evidence.tokens)
    for fingerprint in _fingerprints(english):
        assert squeezed(fingerprint) in flat
    assert not on(text, "steps above")


def test_the_html_has_a_thumbnail_and_a_qr_code(english: dict[str, bytes]) -> None:
    html = english["certificate.html"].decode()
    assert '<img src="data:image/jpeg;base64,' in html  # the stored image, inline
    assert "data:image/svg+xml" in html and URL in html  # the QR code and its link
    assert "no image stored" not in html


def test_chromium_prints_the_html_with_the_same_facts(evidence: Evidence,
                                                      english: dict[str, bytes],
                                                      tmp_path: Path) -> None:
    page = tmp_path / "certificate.html"
    page.write_bytes(english["certificate.html"])
    text = pdf_text(print_to_pdf(page, tmp_path / "chromium.pdf"))
    assert hashlib.sha256(evidence.image).hexdigest() in squeezed(text)
    assert on(text, "lighthouse.png")
    assert on(text, "Chronoseal's own TSA") and on(text, "operator created itself")
    assert on(text, "Example Trust Services") and on(text, "independent of this service")
    assert on(text, "Seed") and on(text, "Cfg scale")


def test_the_chinese_exhibit_is_in_chinese(evidence: Evidence, tmp_path: Path) -> None:
    zh = exhibit_bundle(evidence, "zh")
    html = zh["certificate.html"].decode()
    assert '<html lang="zh-Hans">' in html
    for text in (pdf_text(zh["certificate.pdf"]),
                 pdf_text(print_to_pdf(_write(tmp_path, html), tmp_path / "zh.pdf"))):
        assert on(text, "登记证书") and on(text, "本证书证明什么")
        assert on(text, "由本服务的运营者运行") and on(text, "独立于本服务")
        assert on(text, "提示词") and on(text, "lighthouse.png")
        assert hashlib.sha256(evidence.image).hexdigest() in squeezed(text)


def test_without_a_cjk_font_the_pdf_is_english_and_says_why(
        evidence: Evidence, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(exhibit_pdf, "cjk_font_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger=exhibit_pdf.__name__):
        zh = exhibit_bundle(evidence, "zh")
    assert "no CJK font found" in caplog.text
    assert "登记证书" in zh["certificate.html"].decode()  # a browser brings its own fonts
    text = pdf_text(zh["certificate.pdf"])
    assert on(text, "Certificate of registration") and not on(text, "登记证书")


def test_the_pdf_is_deterministic(evidence: Evidence, english: dict[str, bytes]) -> None:
    again = exhibit_bundle(evidence, image=png_bytes(300, 200, (20, 120, 200)))
    assert again["certificate.pdf"] == english["certificate.pdf"]


def test_a_hash_only_registration_shows_the_placeholder() -> None:
    facts = _facts(build_manifest(image_sha256="ab" * 32, size=None, media_type=None,
                                  generation=normalize_request_metadata({}),
                                  submitted_at=datetime(2026, 12, 1, tzinfo=UTC),
                                  external_id=None).obj)
    html = render_certificate(facts)
    assert "Hash-only registration: no image stored" in html and "<img src=" not in html
    assert "not sent at registration" in html
    zh = render_certificate(replace(facts, language="zh"))
    assert "仅登记哈希：未保存图像" in zh


def test_the_record_table_marks_origins_and_disagreements() -> None:
    request = normalize_request_metadata({"prompt": "a fox", "seed": 7, "model": "sdxl"})
    from_file = {"prompt": "a fox", "seed": 8, "source": "a1111", "raw": {"parameters": "x"}}
    generation = merge_generation(request, from_file)
    facts = _facts(build_manifest(image_sha256="cd" * 32, size=10, media_type="image/png",
                                  generation=generation,
                                  submitted_at=datetime(2026, 12, 1, tzinfo=UTC),
                                  external_id=None).obj)
    html = render_certificate(facts)
    assert 'class="conflict"' in html
    assert "Disagreement: the submitter stated 7" in html
    assert "read from the image file (a1111)" in html and "stated in the request" in html
    assert "operator created itself" in html  # a TSA named "builtin" is the operator's


def _facts(manifest: dict) -> BundleFacts:
    stamp = TimestampFacts(name="builtin", subject="CN=Chronoseal TSA",
                           gen_time=datetime(2026, 12, 1, 18, 43, tzinfo=UTC), serial=1,
                           policy="1.3.6.1.4.1.4146.2.3", chain_length=2,
                           root_fingerprint="AA:" * 31 + "AA")
    proof = {"leaf_index": 0, "tree_size": 1, "leaf": "11" * 32, "root": "11" * 32,
             "audit_path": []}
    return BundleFacts(receipt_id="rcpt_01X", image_name=None, manifest=manifest,
                       manifest_digest="22" * 32, proof=proof, steps=(), timestamps=(stamp,))


def _fingerprints(bundle: dict[str, bytes]) -> list[str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    out = []
    for name, data in bundle.items():
        if name.startswith("certs/"):
            root = x509.load_pem_x509_certificates(data)[-1]
            out.append(root.fingerprint(hashes.SHA256()).hex(":").upper())
    return out


def _write(tmp_path: Path, html: str) -> Path:
    path = tmp_path / "zh.html"
    path.write_text(html, "utf-8")
    return path


def test_the_comparison_page_shows_both_and_where_they_differ(tmp_path: Path) -> None:
    original = _picture()
    painted = Image.open(io.BytesIO(original)).convert("RGB")
    ImageDraw.Draw(painted).rectangle((200, 20, 290, 70), fill=(255, 255, 255))  # a watermark gone
    copy = _png(painted)
    c = Comparison(receipt_id="rcpt_01ORIG", original=original,
                   original_sha256=hashlib.sha256(original).hexdigest(), copy=copy,
                   similarity=0.934, registered_at="2026-12-01 18:43:00 UTC")
    html = render_comparison(c)
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == 3  # original, copy, difference
    diff = Image.open(io.BytesIO(base64.b64decode(uris[2]))).convert("RGB")
    assert diff.size == (300, 200)
    assert _red(diff.getpixel((245, 45))) and not _red(diff.getpixel((60, 150)))
    text = pdf_text(comparison_pdf(c))
    assert on(text, "Similarity: 0.93") and on(text, "rcpt_01ORIG")
    assert on(text, hashlib.sha256(copy).hexdigest()) and on(text, c.original_sha256)
    zh = pdf_text(comparison_pdf(c, "zh"))
    assert on(zh, "相似度：0.93") and on(zh, "差异所在")


def _picture() -> bytes:
    image = Image.new("RGB", (300, 200), (30, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 40, 160, 160), fill=(240, 200, 40))
    draw.rectangle((200, 20, 290, 70), fill=(10, 10, 10))
    return _png(image)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _red(pixel: tuple[int, int, int]) -> bool:
    r, g, b = pixel
    return r > 180 and g < 80 and b < 80


def test_the_iteration_history_lists_the_parents_the_manifest_names() -> None:
    manifest = build_manifest(image_sha256="ef" * 32, size=10, media_type="image/png",
                              generation=normalize_request_metadata({}),
                              submitted_at=datetime(2026, 12, 1, tzinfo=UTC),
                              external_id=None).obj
    # The form h-history's manifests take (issue 14): a registration, or an image digest.
    parents = [{"receipt": "rcpt_01PARENT", "manifest_sha256": "12" * 32},
               {"image_sha256": "34" * 32}]
    html = render_certificate(_facts({**manifest, "parents": parents, "session": "s-7"}))
    assert "registration rcpt_01PARENT (its manifest)" in html and "12" * 32 in html
    assert "an image, by its digest" in html and "34" * 32 in html
    assert "Session: s-7" in html
    assert "names no earlier iteration" in render_certificate(_facts(manifest))


def _ancestor(receipt_id: str, image_sha256: str, when: datetime, name: str | None
              ) -> AncestorFacts:
    stamps = tuple(TimestampFacts(name=tsa, subject="CN=TSA", gen_time=when + later,
                                  serial=1, policy="1.2.3", chain_length=2,
                                  root_fingerprint="AA:" * 31 + "AA")
                   for tsa, later in (("builtin", timedelta(0)),
                                      ("Example TSA_", timedelta(seconds=-3))))
    return AncestorFacts(receipt_id=receipt_id, manifest={"image": {"sha256": image_sha256}},
                         manifest_digest=image_sha256[::-1], timestamps=stamps,
                         image_name=name)


def test_the_iteration_history_shows_each_earlier_registration_oldest_first_with_times() -> None:
    """Issue 14 §2: a history bundle's exhibit shows the iterations "in order with times"."""
    manifest = build_manifest(image_sha256="ef" * 32, size=10, media_type="image/png",
                              generation=normalize_request_metadata({}),
                              submitted_at=datetime(2026, 12, 1, tzinfo=UTC),
                              external_id=None).obj
    newer = _ancestor("rcpt_01NEWER", "56" * 32, datetime(2026, 11, 30, 9, 15, 3, tzinfo=UTC),
                      "iteration-2.png")
    older = _ancestor("rcpt_01OLDER", "78" * 32, datetime(2026, 11, 29, 22, 1, 3, tzinfo=UTC),
                      None)
    parents = [{"receipt": "rcpt_01NEWER", "manifest_sha256": "12" * 32},
               {"image_sha256": "78" * 32},  # the older one, by its image: carried
               {"image_sha256": "34" * 32}]  # an image never registered: by digest only
    facts = replace(_facts({**manifest, "parents": parents}), history=(newer, older),
                    authorities={"Example TSA_": Authority("Example Trust Services", False)})
    html = render_certificate(facts)
    section = html[html.index("Iteration history"):html.index("Merkle inclusion proof")]
    older_row = ("2026-11-29 22:01:00 UTC according to Example Trust Services (independent "
                 "of this service)")
    newer_row = ("2026-11-30 09:15:00 UTC according to Example Trust Services (independent "
                 "of this service)")
    assert older_row in section and newer_row in section, section
    assert section.index("rcpt_01OLDER") < section.index("rcpt_01NEWER") < section.index(
        "34" * 32), section
    assert section.count("rcpt_01NEWER") == 1 and "12" * 32 not in section  # carried once
    assert "iteration-2.png" in section and "not sent at registration" in section
    assert "an image, by its digest" in section and "not in this bundle" in section
    assert "Oldest first" in section
    chinese = render_certificate(replace(facts, language="zh"))
    assert "2026-11-29 22:01:00 UTC，依据 Example Trust Services（独立于本服务）" in chinese
    assert "不在本证据包中" in chinese


def test_a_history_bundle_prints_each_ancestors_time_and_file_name(evidence: Evidence) -> None:
    """Through build_bundle: the times come from the ancestors' own tokens, in HTML and PDF."""
    ancestor = HistoryEntry(
        receipt_id="rcpt_01SKETCH", manifest_jcs=evidence.manifests[0],
        proof=tree_proof_to_json(evidence.tree, manifest_digest(evidence.manifests[0]), 0),
        tokens=evidence.tokens, chains=evidence.chains, image_name="sketch-v1.png")
    bundle = members(evidence.bundle(history=[ancestor], exhibit=Exhibit(
        authorities=AUTHORITIES, verify_url=URL)))
    assert "history/rcpt_01SKETCH/manifest.json" in bundle
    first = min(token_facts(t).gen_time for t in evidence.tokens.values())
    when = f"{first:%Y-%m-%d %H:%M:%S} UTC according to"
    html = bundle["certificate.html"].decode()
    assert when in html and "sketch-v1.png" in html and "rcpt_01SKETCH" in html
    text = pdf_text(bundle["certificate.pdf"])
    assert on(text, when) and on(text, "sketch-v1.png") and on(text, "rcpt_01SKETCH")


def test_without_weasyprint_the_bundle_keeps_its_evidence_and_says_why(
        evidence: Evidence, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if pango or the wheel is missing
    exhibit_pdf.html_to_pdf.cache_clear()
    with caplog.at_level(logging.ERROR):
        files = exhibit_bundle(evidence, image=b"not an image")
    assert "certificate.pdf" not in files and "certificate.html" in files
    assert "without certificate.pdf" in caplog.text
    with pytest.raises(exhibit_pdf.ExhibitRenderError):
        evidence.bundle(only="certificate.pdf")
    exhibit_pdf.html_to_pdf.cache_clear()


def test_a_private_record_shows_its_commitments_not_values() -> None:
    manifest = build_manifest(image_sha256="ab" * 32, size=10, media_type="image/png",
                              generation=normalize_request_metadata({}),
                              submitted_at=datetime(2026, 12, 1, tzinfo=UTC),
                              external_id=None).obj
    private = {"private": True, "commitments": {"prompt": "56" * 32, "seed": "78" * 32}}
    html = render_certificate(_facts({**manifest, "generation": private}))
    assert "A private record" in html and "56" * 32 in html and "78" * 32 in html
    assert "No generation record was stated" not in html
