"""Languages of the pages and the exhibit: English (the msgids) and Simplified Chinese.

Catalogs are JSON files mapping an English message to its translation, in
`catalogs/<language>/*.json` (one file per part, e.g. `pages.json`, `exhibit.json`, merged).
We keep JSON rather than gettext .po/.mo because the compiled .mo files would be a build step
or a committed binary, and the catalog is small; Jinja's i18n extension takes the callables
below exactly as it takes Babel's (`env.install_gettext_callables`). Domain code may use this
package: it imports neither Flask nor anything outside the standard library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

DEFAULT_LANGUAGE = "en"
# Language code -> the BCP 47 tag pages declare in <html lang>.
LANGUAGES: dict[str, str] = {"en": "en", "zh": "zh-Hans"}
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh": "简体中文"}

# An Accept-Language header longer than this is ignored, not parsed (a bound on hostile input).
MAX_ACCEPT_LANGUAGE_CHARS = 512


@dataclass(frozen=True)
class Translator:
    """gettext/ngettext for one language; a message missing from the catalog stays English."""

    language: str
    messages: dict[str, str]

    def gettext(self, message: str, **values: Any) -> str:
        text = self.messages.get(message, message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        message = singular if n == 1 else plural
        text = self.messages.get(message, message)
        return text % {"num": n, **values}


def supported(code: str | None) -> str | None:
    """The supported language a code names (`zh-CN`, `zh-Hans`, `en-GB` …), or None."""
    if not code:
        return None
    primary = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in LANGUAGES else None


def negotiate(accept_language: str | None, requested: str | None = None) -> str:
    """The language to answer in: an explicit choice first, then Accept-Language by weight."""
    chosen = supported(requested)
    if chosen:
        return chosen
    if not accept_language or len(accept_language) > MAX_ACCEPT_LANGUAGE_CHARS:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        code = supported(tag)
        if code and weight > 0:
            ranked.append((-weight, position, code))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


@lru_cache(maxsize=len(LANGUAGES))
def translator(language: str) -> Translator:
    """The translator for a supported language code (English for anything else)."""
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return Translator(DEFAULT_LANGUAGE, {})
    messages: dict[str, str] = {}
    folder = resources.files(__package__).joinpath("catalogs", language)
    for part in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if part.name.endswith(".json"):
            catalog = json.loads(part.read_text("utf-8"))
            messages.update({str(k): str(v) for k, v in catalog.items()})
    return Translator(language, messages)
