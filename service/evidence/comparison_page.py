"""The dispute flow's comparison page: a registered image and a copy side by side, their
similarity, and a difference view (service.evidence.comparison's); as HTML and printed to PDF
like the certificate.

The caller (the web pages, a use case) brings both images' bytes and the similarity it measured
(service.evidence.similarity); nothing here decides whether they match.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from service.evidence.certificate import CSP, stylesheet
from service.evidence.comparison import difference_map
from service.evidence.exhibit_pdf import html_to_pdf, print_language
from service.evidence.exhibit_render import render_page
from service.evidence.thumbnail import THUMBNAIL_SIDE, load_rgb, png_data_uri
from service.i18n import DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Comparison:
    """What the page compares: the registration, both images' bytes, the measured similarity."""

    receipt_id: str
    original: bytes | None  # None: a hash-only registration, or its image no longer stored
    original_sha256: str
    copy: bytes
    similarity: float  # 0..1, as similarity.Closeness.similarity gives it
    registered_at: str | None = None  # the earliest timestamp, as the certificate shows it


def render_comparison(c: Comparison, language: str = DEFAULT_LANGUAGE) -> str:
    """The comparison page in `language`."""
    original = load_rgb(c.original, THUMBNAIL_SIDE) if c.original else None
    copy = load_rgb(c.copy, THUMBNAIL_SIDE)
    difference = (png_data_uri(difference_map(original, copy))
                  if original is not None and copy is not None else None)
    return render_page(
        "comparison.html", language, csp=CSP, css=stylesheet(), receipt_id=c.receipt_id,
        registered_at=c.registered_at, similarity=f"{c.similarity:.2f}",
        original=png_data_uri(original) if original is not None else None,
        copy=png_data_uri(copy) if copy is not None else None, difference=difference,
        original_sha256=c.original_sha256, copy_sha256=hashlib.sha256(c.copy).hexdigest())


def comparison_pdf(c: Comparison, language: str = DEFAULT_LANGUAGE) -> bytes:
    """The comparison page printed to A4 (English when no font covers `language`)."""
    return html_to_pdf(render_comparison(c, print_language(language)))
