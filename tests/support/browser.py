"""Debian's Chromium driven by Playwright (from PyPI), for the pages' browser tests.

Playwright's own browser download cannot be reached here, so the tests launch the system's
/usr/bin/chromium (scripts/venv.sh installs it when missing). Screenshots go to
tests/artifacts/ (ignored by git), one per flow, for a person to look at after a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path(os.environ.get("CHRONOSEAL_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Root in a container has no user namespaces for Chromium's sandbox; the pages are our own.
LAUNCH_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed when the block ends."""
    if not CHROMIUM.exists():
        raise AssertionError(f"{CHROMIUM} is missing: run scripts/venv.sh (apt-get install "
                             "chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
