"""Benchmark the exhibit (certificate.pdf); the last line printed is one JSON object.

    bundle_ms              build_bundle of a one-token bundle with a 1024 px image: everything
    bundle_again_ms        the same bundle again (its PDF kept by exhibit_pdf's cache)
    bundle_without_pdf_ms  the same with the PDF left out (what a bundle cost before the PDF)
    weasyprint_ms / _kib   certificate.html printed by WeasyPrint (what bundles use), en and zh
    reportlab_ms / _kib    a ReportLab document with the same facts (title, digest, thumbnail,
                           tables, commands), en and zh, for the choice in README "The exhibit"
    install_mib            site-packages size of each library with its own dependencies

Medians of ROUNDS runs in one process; compare the figures as ratios (the machine is shared).
`--plain` prints only bundle_plain_ms, build_bundle without the exhibit's inputs; it also runs
from a checkout made before the exhibit (copy this file there) for the "before" figure.
Needs reportlab installed (`pip install reportlab`; not a requirement of the service).
"""

from __future__ import annotations

import hashlib
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw  # noqa: E402

from service.evidence.bundle import build_bundle  # noqa: E402
from service.evidence.generation import normalize_request_metadata  # noqa: E402
from service.evidence.manifest import build_manifest  # noqa: E402
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority  # noqa: E402
from service.timestamping.merkle import MerkleTree, tree_proof_to_json  # noqa: E402
from service.timestamping.tsa_query import encode_query  # noqa: E402

ROUNDS = 10  # a PDF takes tens of milliseconds: ten give a stable median in seconds
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"  # fonts-wqy-microhei
PACKAGES = {  # each library's own distribution and the dependencies only it brings
    "weasyprint": ["weasyprint", "pydyf", "cssselect2", "tinycss2", "tinyhtml5", "pyphen",
                   "fontTools", "cffi", "webencodings"],
    "reportlab": ["reportlab"],
}


def _median_ms(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def _picture() -> bytes:
    image = Image.new("RGB", (1024, 1024), (30, 90, 160))
    ImageDraw.Draw(image).ellipse((200, 200, 800, 800), fill=(240, 200, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _evidence(tmp: Path, image: bytes) -> dict[str, Any]:
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=tmp / "tsa"))
    generation = normalize_request_metadata({"prompt": "a lighthouse at dusk", "seed": 42,
                                             "steps": 28, "cfg_scale": 6.5, "model": "sdxl"})
    manifest = build_manifest(image_sha256=hashlib.sha256(image).hexdigest(), size=len(image),
                              media_type="image/png", generation=generation,
                              submitted_at=datetime.now(UTC), external_id=None)
    tree = MerkleTree([manifest.digest])
    reply = authority.respond(encode_query(tree.root, hash_name="sha256", nonce=1,
                                           cert_req=True, policy=None))
    chain = "".join(c.public_bytes(_pem()).decode() for c in authority.material.chain)
    return {"manifest_jcs": manifest.jcs, "proof": tree_proof_to_json(tree, manifest.digest, 0),
            "tokens": {"builtin": reply}, "chains": {"builtin": chain},
            "receipt_id": "rcpt_01BENCH", "image_name": "lighthouse.png"}


def _pem() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.PEM


def _reportlab(image: bytes, digest: str, language: str) -> bytes:
    """The certificate's facts laid out with ReportLab's Platypus (what the other choice costs)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Image as RLImage
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table

    font = "Helvetica"
    if language == "zh":
        if "WQY" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("WQY", CJK_FONT, subfontIndex=0))
        font = "WQY"
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = font
    title = "登记证书" if language == "zh" else "Certificate of registration"
    rows = [[k, v] for k, v in (("File name", "lighthouse.png"), ("SHA-256", digest),
                                ("Prompt", "a lighthouse at dusk"), ("Seed", "42"),
                                ("Steps", "28"), ("CFG scale", "6.5"), ("Model", "sdxl"))]
    story = [Paragraph(title, styles["Title"]), RLImage(io.BytesIO(image), 60 * mm, 60 * mm),
             Paragraph(digest, styles["Heading2"]),
             Paragraph("existed no later than 2026-12-01 18:43 UTC according to builtin "
                       "(run by this service's operator)", styles["Normal"]),
             Table(rows, style=[("FONTNAME", (0, 0), (-1, -1), font)]),
             *[Paragraph(f"openssl ts -verify -digest {digest} -in tokens/builtin.tsr "
                         f"-CAfile builtin-cert2.pem", styles["Code"]) for _ in range(6)]]
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4).build(story)
    return out.getvalue()


def _install_mib(names: list[str]) -> float:
    import importlib.util
    total = 0
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        root = Path(spec.origin).parent
        total += sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return round(total / 2**20, 1)


def main() -> int:
    image = _picture()
    with tempfile.TemporaryDirectory() as tmp:
        evidence = _evidence(Path(tmp), image)
    if "--plain" in sys.argv:  # runs on a checkout before the exhibit too: the "before" figure
        print(json.dumps({"rounds": ROUNDS,
                          "bundle_plain_ms": _median_ms(lambda: build_bundle(**evidence))}))
        return 0
    from service.evidence import bundle as bundle_module
    from service.evidence.bundle import Exhibit
    from service.evidence.exhibit_pdf import html_to_pdf
    from service.evidence.facts import Authority

    exhibit = Exhibit(image=image, authorities={"builtin": Authority("Built-in TSA", True)},
                      verify_url="https://stamps.example.org/r/rcpt_01BENCH")
    figures: dict[str, Any] = {"rounds": ROUNDS}
    def fresh() -> bytes:
        html_to_pdf.cache_clear()  # a bundle whose PDF this process has not printed yet
        return build_bundle(**evidence, exhibit=exhibit)

    figures["bundle_ms"] = _median_ms(fresh)
    figures["bundle_again_ms"] = _median_ms(lambda: build_bundle(**evidence, exhibit=exhibit))
    real = bundle_module.html_to_pdf
    bundle_module.html_to_pdf = lambda html: b""  # type: ignore[assignment]
    try:
        figures["bundle_without_pdf_ms"] = _median_ms(
            lambda: build_bundle(**evidence, exhibit=exhibit))
    finally:
        bundle_module.html_to_pdf = real
    digest = hashlib.sha256(image).hexdigest()
    for language in ("en", "zh"):
        lang_exhibit = Exhibit(image=image, authorities=exhibit.authorities,
                               verify_url=exhibit.verify_url, language=language)
        html = build_bundle(**evidence, exhibit=lang_exhibit, only="certificate.html").decode()
        pdf = html_to_pdf(html)
        figures[f"weasyprint_{language}_ms"] = _median_ms(lambda h=html: html_to_pdf.__wrapped__(h))
        figures[f"weasyprint_{language}_kib"] = round(len(pdf) / 1024, 1)
        try:
            made = _reportlab(image, digest, language)
        except ImportError:
            continue
        figures[f"reportlab_{language}_ms"] = _median_ms(
            lambda lang=language: _reportlab(image, digest, lang))
        figures[f"reportlab_{language}_kib"] = round(len(made) / 1024, 1)
    figures["install_mib"] = {k: _install_mib(v) for k, v in PACKAGES.items()}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
