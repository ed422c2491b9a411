"""Every message the pages show has a Simplified Chinese translation that keeps its fields."""

from __future__ import annotations

import re
from importlib import resources

from service.i18n import translator
from service.web.pages.explain import MEANING, NOT_AUTHORSHIP

_MSGID = re.compile(r"""_\((["'])(.*?)\1""")
_FIELD = re.compile(r"%\(\w+\)s")


def _page_messages() -> set[str]:
    folder = resources.files("service.web.pages").joinpath("templates", "pages")
    found = {m.group(2) for entry in folder.iterdir() if entry.name.endswith(".html")
             for m in _MSGID.finditer(entry.read_text("utf-8"))}
    return found | {text for pair in MEANING.values() for text in pair} | {NOT_AUTHORSHIP}


def test_every_page_message_is_translated_with_the_same_fields() -> None:
    zh = translator("zh")
    messages = _page_messages()
    assert len(messages) > 80  # the templates were found
    missing = sorted(m for m in messages if zh.gettext(m) == m)
    assert not missing, missing
    for message in messages:
        assert sorted(_FIELD.findall(zh.gettext(message))) == sorted(_FIELD.findall(message))


def test_every_exhibit_template_message_is_translated_with_the_same_fields() -> None:
    """certificate.html and comparison.html (the exhibit, HTML and PDF) in Chinese too."""
    zh = translator("zh")
    folder = resources.files("service.evidence").joinpath("templates")
    messages = {m.group(2) for entry in folder.iterdir() if entry.name.endswith(".html")
                for m in _MSGID.finditer(entry.read_text("utf-8"))}
    assert len(messages) > 60  # the templates were found
    same_in_both = {"SHA-256"}
    missing = sorted(m for m in messages - same_in_both if zh.gettext(m) == m)
    assert not missing, missing
    for message in messages:
        assert sorted(_FIELD.findall(zh.gettext(message))) == sorted(_FIELD.findall(message))
