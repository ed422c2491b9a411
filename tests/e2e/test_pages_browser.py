"""The pages in a real browser (Playwright driving Debian's Chromium) against `chronoseal up`:
sign in, upload by the page's script with progress, list; verify a downloaded bundle, a
tampered image and a repost (with JavaScript off); find the original; the language switch;
the CSP (no violation reported, Swagger UI running under it). Screenshots: tests/artifacts/."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import ImageOps
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.alterations import add_watermark, encode
from tests.support.browser import screenshot
from tests.support.pictures import picture, picture_png
from tests.support.running_up import START_TIMEOUT_S, RunningUp

SEED = 41
WAIT_MS = 30_000  # one page action on a busy 2-core machine


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    made = {"original.png": picture_png(SEED),
            "tampered.jpg": encode(add_watermark(picture(SEED)), "JPEG", quality=85),
            "repost.jpg": encode(ImageOps.mirror(picture(SEED)), "JPEG", quality=60),
            "dropped.png": picture_png(SEED + 1)}
    for name, data in made.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in made}


def _drop(page: Page, image: Path) -> None:
    """Drop `image` on the upload form as a drag from the desktop does (a DataTransfer)."""
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "image/png"}));
            return transfer;
        }""", [image.name, base64.b64encode(image.read_bytes()).decode()])
    page.dispatch_event("#upload", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#upload", "drop", {"dataTransfer": transfer})


def _watch_csp(page: Page) -> list[str]:
    """Console messages about the Content-Security-Policy (a blocked script or style)."""
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    return violations


def _secret(up: RunningUp) -> str:
    return up.auth["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def creator(browser: Browser, up: RunningUp) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=up.api, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


@pytest.fixture(scope="module")
def registered(creator: BrowserContext, up: RunningUp, files: dict[str, Path]) -> dict[str, str]:
    """Sign in, upload the original (public) through upload.js, wait until it is stamped;
    its receipt id and the path of its downloaded bundle."""
    page = creator.new_page()
    violations = _watch_csp(page)
    page.goto("/signin")
    page.get_by_label("API key").fill(_secret(up))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/my")
    page.set_input_files("#images", str(files["original.png"]))
    page.check("input[name=public]")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#progress[data-done=true]")
    assert page.locator("#progress progress").evaluate("bar => bar.value") == 100
    link = page.locator("#progress li.done a")
    receipt_id = link.inner_text().removeprefix(" → ").strip()
    assert receipt_id.startswith("rcp_"), receipt_id
    _drop(page, files["dropped.png"])  # dragged onto the form: upload.js sends it the same way
    page.wait_for_selector("#progress li.done:nth-child(2) a")
    screenshot(page, "creator-upload")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # the list, filtered to stamped, once the worker stamped it
        page.goto("/my?status=stamped")
        if page.get_by_role("link", name=receipt_id).count():
            break
        assert time.monotonic() < deadline, up.log.read_text()[-3000:]
        time.sleep(0.5)
    screenshot(page, "creator-list")
    page.goto(f"/r/{receipt_id}")
    assert page.locator("table.record").get_by_text("image.sha256").count() == 1
    with page.expect_download() as download:
        page.get_by_role("link", name="Evidence bundle (.zip)").click()
    bundle = Path(download.value.path())
    screenshot(page, "receipt")
    assert not violations, violations
    page.close()
    return {"id": receipt_id, "bundle": str(bundle)}


@pytest.fixture
def no_js(browser: Browser, up: RunningUp) -> Iterator[Page]:
    """A visitor's page with JavaScript off: the main flows must work without it."""
    context = browser.new_context(base_url=up.api, java_script_enabled=False)
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


def _verify(page: Page, image: Path, bundle: str) -> None:
    page.goto("/")
    page.get_by_label("Image file").set_input_files(str(image))
    page.get_by_label("Evidence bundle (.zip)").set_input_files(bundle)
    page.get_by_role("button", name="Verify").last.click()
    page.wait_for_selector("section.verdict")


def test_verify_a_valid_bundle_names_each_authority(no_js: Page, registered: dict[str, str],
                                                    files: dict[str, Path]) -> None:
    _verify(no_js, files["original.png"], registered["bundle"])
    verdict = no_js.locator("section.verdict")
    assert "Valid" in verdict.inner_text() and "existed no later than" in verdict.inner_text()
    assert "builtin" in verdict.inner_text()
    assert "run by this service's operator" in verdict.inner_text()
    assert "does not prove who made the image" in verdict.inner_text()
    screenshot(no_js, "verify-valid")


def _wait_hashed(up: RunningUp, page: Page, repost: Path, receipt_id: str) -> None:
    """Find-the-original until the worker has hashed the registration."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        page.goto("/find")
        page.get_by_label("Image file").set_input_files(str(repost))
        page.get_by_role("button", name="Search").click()
        page.wait_for_load_state()
        if page.get_by_role("link", name=receipt_id).count():
            return
        assert time.monotonic() < deadline, up.log.read_text()[-3000:]
        time.sleep(0.5)


def test_find_the_original_of_a_repost(no_js: Page, up: RunningUp, registered: dict[str, str],
                                       files: dict[str, Path]) -> None:
    _wait_hashed(up, no_js, files["repost.jpg"], registered["id"])
    assert "similarity" in no_js.locator("ol.matches").inner_text()
    thumb = no_js.locator("ol.matches img.thumb").first
    thumb.scroll_into_view_if_needed()
    assert no_js.locator(".compare img").count() == 3
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0") is True
    screenshot(no_js, "find-the-original")


def test_a_tampered_image_shows_what_it_looks_like(no_js: Page, up: RunningUp,
                                                   registered: dict[str, str],
                                                   files: dict[str, Path]) -> None:
    _wait_hashed(up, no_js, files["repost.jpg"], registered["id"])
    _verify(no_js, files["tampered.jpg"], registered["bundle"])
    assert "Not valid" in no_js.locator("section.verdict").inner_text()
    lookalike = no_js.locator("section.lookalike").inner_text()
    assert re.search(rf"It looks like registration {registered['id']} \(similarity [01]\.\d\d\)",
                     lookalike), lookalike
    assert no_js.locator(".compare img").count() == 3
    screenshot(no_js, "verify-tampered")


def test_a_repost_given_to_verify_is_traced_to_the_registration(
        no_js: Page, up: RunningUp, registered: dict[str, str], files: dict[str, Path]) -> None:
    _wait_hashed(up, no_js, files["repost.jpg"], registered["id"])
    _verify(no_js, files["repost.jpg"], registered["bundle"])
    assert f"It looks like registration {registered['id']}" in no_js.locator(
        "section.lookalike").inner_text()
    screenshot(no_js, "verify-repost")


def test_the_language_switch_is_remembered(browser: Browser, up: RunningUp) -> None:
    context = browser.new_context(base_url=up.api, locale="en-US")
    page = context.new_page()
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("link", name="简体中文").click()
    page.wait_for_selector("html[lang=zh-Hans]")
    page.get_by_role("link", name="查找原图").first.click()
    page.wait_for_url("**/find")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.get_by_role("heading", name="查找原图").count() == 1
    screenshot(page, "language-zh")
    context.close()


def test_csp_is_sent_and_swagger_ui_runs_under_it(browser: Browser, up: RunningUp) -> None:
    context = browser.new_context(base_url=up.api)
    page = context.new_page()
    violations = _watch_csp(page)
    response = page.goto("/docs")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.wait_for_selector(".swagger-ui .info", timeout=WAIT_MS)
    assert page.get_by_text("/v1/stamps").count() > 0
    screenshot(page, "docs")
    assert not violations, violations
    context.close()
