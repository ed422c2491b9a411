"""certificate.pdf (and the comparison PDF): the exhibit pages printed to A4 with WeasyPrint.

WeasyPrint prints the very HTML the bundle ships beside the PDF, so the two never disagree
(README "The exhibit" has the measurements against ReportLab). Fonts come from fontconfig at run
time: Chinese needs a CJK font (scripts/venv.sh installs fonts-wqy-microhei); without one a
Chinese exhibit is printed in English, with a warning in the log, rather than as empty boxes.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from service.errors import ChronosealError

log = logging.getLogger(__name__)

CJK_LANGUAGES = frozenset({"zh"})
FC_LIST_TIMEOUT_S = 10.0  # fontconfig answers from its cache in milliseconds; a bound, no more
# A bundle downloaded again prints the same page: the last few PDFs are kept per process
# (~50 KiB each, plus the page's HTML as the key).
PDF_CACHE_ENTRIES = 32
# PDF metadata fixed: a bundle is deterministic (same evidence, same bytes), so no dates.
_PDF_OPTIONS = {"pdf_identifier": b"chronoseal-exhibit", "uncompressed_pdf": False}


class ExhibitRenderError(ChronosealError):
    """The exhibit page could not be printed (WeasyPrint failed on it)."""


@lru_cache(maxsize=1)
def cjk_font_available() -> bool:
    """Whether fontconfig knows a font covering Simplified Chinese (asked once a process)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    try:
        found = subprocess.run([fc_list, ":lang=zh-cn", "family"], capture_output=True,  # noqa: S603
                               timeout=FC_LIST_TIMEOUT_S, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(found.strip())


def print_language(language: str, fonts: Callable[[], bool] | None = None) -> str:
    """The language a PDF can be printed in: `language`, or English when it needs a CJK font
    that this machine lacks (logged, so an operator sees why a Chinese exhibit is English)."""
    if language in CJK_LANGUAGES and not (fonts or cjk_font_available)():
        log.warning("no CJK font found (install fonts-wqy-microhei or fonts-noto-cjk): "
                    "printing the %s exhibit in English", language)
        return "en"
    return language


@lru_cache(maxsize=PDF_CACHE_ENTRIES)
def html_to_pdf(html: str) -> bytes:
    """A4 PDF bytes of an exhibit page (its CSS sets the page size and margins)."""
    try:
        import weasyprint  # noqa: PLC0415 - loads pango bindings: only where PDFs are made

        return bytes(weasyprint.HTML(string=html).write_pdf(font_config=_font_config(),
                                                             **_PDF_OPTIONS))
    except Exception as exc:  # no pango (OSError), or WeasyPrint failed on the page
        raise ExhibitRenderError(f"the exhibit could not be printed: {exc}") from exc


_fonts = threading.local()


def _font_config() -> Any:
    """This thread's WeasyPrint font configuration: fonts found once are reused (it halves
    the time per PDF), one per thread because WeasyPrint does not share it across threads."""
    config = getattr(_fonts, "config", None)
    if config is None:
        from weasyprint.text.fonts import FontConfiguration  # noqa: PLC0415
        config = _fonts.config = FontConfiguration()
    return config
