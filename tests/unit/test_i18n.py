"""Language negotiation and catalog lookup for the pages and the exhibit."""

from service.i18n import negotiate, supported, translator


def test_explicit_choice_wins_over_accept_language() -> None:
    assert negotiate("en-US,en;q=0.9", requested="zh") == "zh"


def test_accept_language_by_weight_then_order() -> None:
    assert negotiate("fr;q=1.0, zh-CN;q=0.8, en;q=0.5") == "zh"
    assert negotiate("en;q=0.4, zh-Hans;q=0.9") == "zh"
    assert negotiate("zh-TW, en") == "zh"
    assert negotiate("de, fr") == "en"


def test_hostile_or_malformed_header_falls_back_to_english() -> None:
    assert negotiate("zh;q=abc") == "en"
    assert negotiate("zh;q=0") == "en"
    assert negotiate("zh," * 1000) == "en"
    assert negotiate(None, requested="xx") == "en"


def test_supported_codes() -> None:
    assert supported("zh_CN") == "zh"
    assert supported("EN-gb") == "en"
    assert supported("ja") is None


def test_translator_falls_back_to_the_english_message() -> None:
    assert translator("en").gettext("Verify") == "Verify"
    assert translator("zh").gettext("no such message %(n)s", n=3) == "no such message 3"
    assert translator("zh").gettext("Verify") == "验证"
