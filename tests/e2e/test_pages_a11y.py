"""The pages' accessibility in a real browser (Playwright driving Debian's Chromium) against
`chronoseal up`: axe-core's WCAG 2.0/2.1 A and AA rules over every page, in English and in
Chinese, signed out and signed in; and the Verify form by keyboard alone, each control reached
in document order with a visible focus indicator. Screenshots: tests/artifacts/."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.accessibility import axe_violations, describe
from tests.support.browser import screenshot
from tests.support.pictures import picture_png
from tests.support.running_up import START_TIMEOUT_S, RunningUp, wait_until_stamped

SEED = 43
WAIT_MS = 30_000  # one page action on a busy 2-core machine
LANGUAGES = {"en": ("en-US", "en"), "zh": ("zh-CN", "zh-Hans")}  # browser locale, <html lang>
MAX_TABS = 40  # more Tab presses than the Verify page has stops


@pytest.fixture(scope="module")
def stamped(up: RunningUp) -> dict[str, Any]:
    """A public registration of an uploaded picture, stamped and hashed (find-the-original
    matches it): its receipt id, image bytes and digest."""
    image = picture_png(SEED)
    posted = requests.post(f"{up.api}/v1/stamps", headers=up.auth, timeout=30,
                           data={"public": "true"},
                           files={"image": ("iteration-3.png", image, "image/png")})
    assert posted.status_code == 202, posted.text
    receipt = wait_until_stamped(up, f"{up.api}{posted.json()['links']['self']}")
    return {"id": receipt["id"], "image": image, "sha256": hashlib.sha256(image).hexdigest()}


def _context(browser: Browser, up: RunningUp, lang: str) -> BrowserContext:
    context = browser.new_context(base_url=up.api, locale=LANGUAGES[lang][0])
    context.set_default_timeout(WAIT_MS)
    return context


class Audit:
    """Runs axe on each page visited and keeps every violation, so one run names them all."""

    def __init__(self, page: Page, lang: str) -> None:
        self.page, self.lang = page, lang
        self.found: list[str] = []

    def check(self, name: str) -> None:
        self.page.wait_for_load_state()
        html_lang = self.page.locator("html").get_attribute("lang")
        if html_lang != LANGUAGES[self.lang][1]:
            self.found.append(f"{self.lang} {name}: <html lang={html_lang!r}>")
        self.found += describe(f"{self.lang} {name}", axe_violations(self.page))
        screenshot(self.page, f"a11y-{self.lang}-{name}")


def _find(page: Page, image_path: str, receipt_id: str) -> None:
    """Find-the-original with the registered picture, until the worker has hashed it."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        page.goto("/find")
        page.set_input_files("#image", image_path)
        page.locator("main form button[type=submit]").click()
        page.wait_for_load_state()
        if page.get_by_role("link", name=receipt_id).count():
            return
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(0.5)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_page_passes_axe_wcag_a_and_aa(browser: Browser, up: RunningUp,
                                            stamped: dict[str, Any], lang: str,
                                            tmp_path: Path) -> None:
    context = _context(browser, up, lang)
    page = context.new_page()
    audit = Audit(page, lang)
    receipt_id = stamped["id"]
    for path, name in (("/", "verify"), ("/find", "find"), ("/signin", "signin"),
                       (f"/r/{receipt_id}", "receipt-public"),
                       (f"/?receipt_id={receipt_id}", "verify-from-share-link")):
        page.goto(path)
        audit.check(name)
    image_path = tmp_path / "original.png"
    image_path.write_bytes(stamped["image"])
    _find(page, str(image_path), receipt_id)
    audit.check("find-results")
    page.goto("/")
    page.fill("#sha256", stamped["sha256"])
    page.fill("#receipt_id", receipt_id)
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("section.verdict.ok")
    audit.check("verdict-valid")
    page.goto("/")
    page.fill("#sha256", "0" * 64)
    page.fill("#receipt_id", receipt_id)
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("section.verdict.bad")
    audit.check("verdict-not-valid")
    page.goto("/signin")
    page.fill("#api_key", "not a key")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("p.error")
    audit.check("signin-refused")
    page.fill("#api_key", up.auth["Authorization"].removeprefix("Bearer "))
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/my")
    audit.check("my")
    page.goto("/my?status=stamped")
    audit.check("my-filtered")
    page.goto(f"/r/{receipt_id}")
    audit.check("receipt-owner")
    page.goto(f"/r/{receipt_id}/certificate.html")  # the exhibit's printable page
    audit.check("certificate")
    page.goto("/deliveries")
    audit.check("deliveries")
    page.goto("/r/rcp_does_not_exist")
    audit.check("not-found")
    context.close()
    assert not audit.found, "\n".join(audit.found)


# Swagger UI's markup puts each operation's copy and lock buttons inside the summary, itself a
# button: its structure, not our styling; every other rule applies to /docs too (docs.css).
SWAGGER_NESTED_BUTTONS = "nested-interactive"


def test_the_api_documentation_passes_axe_but_for_swagger_uis_nested_buttons(
        browser: Browser, up: RunningUp) -> None:
    context = _context(browser, up, "en")
    page = context.new_page()
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .info")
    page.wait_for_selector(".swagger-ui .opblock-summary-method")
    found = describe("en docs", axe_violations(page, skip=(SWAGGER_NESTED_BUTTONS,)))
    screenshot(page, "a11y-en-docs")
    context.close()
    assert not found, "\n".join(found)


def test_axe_runs_under_the_pages_csp_and_reports_what_it_finds(browser: Browser,
                                                                 up: RunningUp) -> None:
    """The check above means something: on our page, under its CSP, axe names a control
    without a label and text below the contrast minimum once they are there."""
    context = _context(browser, up, "en")
    page = context.new_page()
    response = page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.evaluate("""() => {
        const main = document.querySelector('main');
        main.insertAdjacentHTML('beforeend',
            '<input id="unlabelled" type="text"><p id="faint">faint</p>');
        document.getElementById('faint').style.color = '#bbb';  // CSSOM: the CSP allows it
    }""")
    lines = describe("canary", axe_violations(page))
    assert any(": label (" in line and "#unlabelled" in line for line in lines), lines
    assert any("color-contrast" in line and "#faint" in line for line in lines), lines
    context.close()


_FOCUS_STYLE = """el => { const s = getComputedStyle(el);
    return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(' | '); }"""
_FOCUSED = """() => { const el = document.activeElement;
    let behind = el.parentElement;  // the outline is drawn outside the box, over this
    while (behind && getComputedStyle(behind).backgroundColor === 'rgba(0, 0, 0, 0)') {
        behind = behind.parentElement; }
    const box = el.getBoundingClientRect();
    return {id: el.id, tag: el.tagName.toLowerCase(), inForm: !!el.closest('main form'),
            cls: el.className, outline: getComputedStyle(el).outlineColor,
            behind: behind ? getComputedStyle(behind).backgroundColor : 'rgb(255, 255, 255)',
            shown: box.width > 0 && box.top >= 0 && box.left >= 0}; }"""
MIN_FOCUS_CONTRAST = 3.0  # WCAG 2.1 SC 1.4.11: a focus indicator against what is beside it


def _luminance(css: str) -> float:
    """The relative luminance (WCAG 2.1) of a computed colour, "rgb(r, g, b)"."""
    channels = [int(c) / 255 for c in re.findall(r"\d+", css)[:3]]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _tab_through(page: Page) -> list[dict[str, Any]]:
    """Tab from the top of the page until the Verify form's submit button has focus: each
    stop with its computed focus style (read while it has keyboard focus)."""
    stops = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        stop = page.evaluate(_FOCUSED)
        stop["style"] = page.evaluate(f"() => ({_FOCUS_STYLE})(document.activeElement)")
        stops.append(stop)
        if stop["inForm"] and stop["tag"] == "button":
            return stops
    raise AssertionError(f"Tab never reached the Verify button: {stops}")


def test_verify_form_by_keyboard_alone(browser: Browser, up: RunningUp,
                                       stamped: dict[str, Any]) -> None:
    context = _context(browser, up, "en")
    page = context.new_page()
    page.goto("/")
    stops = _tab_through(page)
    first = stops[0]
    assert "skip" in first["cls"] and first["shown"], stops  # the first stop skips the nav
    for stop in stops:
        assert contrast(stop["outline"], stop["behind"]) >= MIN_FOCUS_CONTRAST, stop
    controls = page.eval_on_selector_all(
        "main form :is(input:not([type=hidden]), select, textarea, button)",
        "els => els.map(el => el.id || el.tagName.toLowerCase())")
    reached = [s["id"] or s["tag"] for s in stops if s["inForm"]]
    assert reached == controls == ["image", "sha256", "bundle", "receipt_id", "button"], (
        reached, controls)
    page.evaluate("() => document.activeElement.blur()")
    for stop in stops:
        selector = f"#{stop['id']}" if stop["id"] else "main form button[type=submit]"
        if not stop["inForm"]:
            continue
        unfocused = page.eval_on_selector(selector, _FOCUS_STYLE)
        assert stop["style"] != unfocused, (selector, stop["style"])
        outline_style, outline_width, _color, shadow = stop["style"].split(" | ")
        assert (outline_style != "none" and outline_width != "0px") or shadow != "none", stop
    page.goto("/")
    while page.evaluate("() => document.activeElement.id") != "sha256":
        page.keyboard.press("Tab")
    page.keyboard.type(stamped["sha256"])
    while page.evaluate("() => document.activeElement.id") != "receipt_id":
        page.keyboard.press("Tab")
    page.keyboard.type(stamped["id"])
    page.keyboard.press("Tab")
    assert page.evaluate(_FOCUSED)["tag"] == "button"
    page.keyboard.press("Enter")
    page.wait_for_selector("section.verdict")
    verdict = page.locator("section.verdict").inner_text()
    assert "Valid" in verdict and "existed no later than" in verdict, verdict
    screenshot(page, "a11y-keyboard-verdict")
    context.close()
