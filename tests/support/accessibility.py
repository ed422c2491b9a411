"""axe-core (the axe.min.js the axe-playwright-python wheel ships) run over a Playwright page.

Only the WCAG 2.0/2.1 level A and AA rules: what issue 15's "accessible (labels, keyboard,
contrast)" asks of the pages. The script is evaluated through the DevTools protocol
(page.evaluate), which the page's Content-Security-Policy does not govern, so the pages keep
their policy unchanged and nothing is loaded from a CDN.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from axe_playwright_python.base import AXE_FILE_PATH
from playwright.sync_api import Page

WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


@cache
def axe_script() -> str:
    return str(AXE_FILE_PATH.read_text(encoding="utf-8"))


def axe_violations(page: Page, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """axe's violations of the WCAG A/AA rules on the page as it is now; `skip`: rule ids not
    run (each caller says why)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_script())
    results = page.evaluate(
        """([tags, skip]) => axe.run(document, {runOnly: {type: 'tag', values: tags},
            rules: Object.fromEntries(skip.map(id => [id, {enabled: false}])),
            resultTypes: ['violations']})""", [list(WCAG_TAGS), list(skip)])
    return list(results["violations"])


def describe(where: str, violations: list[dict[str, Any]]) -> list[str]:
    """One line per failing node: the page, the rule, its impact, the node and why."""
    lines = []
    for v in violations:
        for node in v["nodes"]:
            lines.append(f"{where}: {v['id']} ({v['impact']}) at {' '.join(node['target'])}: "
                         f"{node.get('failureSummary', '').replace(chr(10), ' ')} "
                         f"[{node['html'][:160]}]")
    return lines
