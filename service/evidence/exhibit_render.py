"""The Jinja environment the exhibit pages (certificate, comparison) are rendered with.

Autoescaped (every value shown comes from a caller's record or file name), one environment per
language with service.i18n's gettext installed, so templates say `_("English text")`.
Jinja is not Flask: the domain may use it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import segno
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from service.i18n import LANGUAGES, supported, translator

# Medium error correction: a printed QR code survives a fold or a stain across a few modules.
QR_ERROR_LEVEL = "m"
QR_SCALE = 4  # pixels per module in the SVG's own units; the page sizes it in mm
MAX_QR_URL_CHARS = 512  # a base URL and a receipt id; longer is a misconfiguration


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str) -> Environment:
    """The environment for a supported language code (English for anything else)."""
    env = Environment(
        loader=PackageLoader("service.evidence", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    t = translator(language)
    env.install_gettext_callables(t.gettext, t.ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


def render_page(template: str, language: str, **context: Any) -> str:
    """Render `template` (a file in service/evidence/templates) in `language`."""
    code = supported(language) or "en"
    return environment(code).get_template(template).render(
        lang=code, html_lang=LANGUAGES[code], **context)


def qr_data_uri(url: str) -> str | None:
    """An SVG QR code of `url` as a data: URI (pages load nothing remote); None for no URL."""
    if not url or len(url) > MAX_QR_URL_CHARS:
        return None
    return str(segno.make(url, error=QR_ERROR_LEVEL, micro=False)
               .svg_data_uri(scale=QR_SCALE, border=2))
