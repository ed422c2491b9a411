"""The README starts with a quick start and lists every command; the docs hold the references
(settings table, webhook events) generated from or checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from service.cli import build_parser
from service.settings import SETTINGS, settings_markdown
from service.webhooks.events import EVENTS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
CONFIGURATION = (REPO / "docs" / "configuration.md").read_text()
WEBHOOKS = (REPO / "docs" / "webhooks.md").read_text()
QUICK_START_LINES = 40  # "fits on one screen"


def test_configuration_reference_matches_settings() -> None:
    assert settings_markdown() in CONFIGURATION
    for setting in SETTINGS:
        assert f"`{setting.env}`" in CONFIGURATION


def test_the_readme_opens_with_a_quick_start_that_fits_on_a_screen() -> None:
    sections = README.split("\n## ")
    assert sections[1].startswith("Quick start")
    quick = sections[1]
    assert len(quick.splitlines()) <= QUICK_START_LINES
    for step in ("make run", "second terminal in the same directory", "keys create",
                 "chronoseal stamp", "chronoseal verify"):
        assert step in quick, step


def test_the_commands_table_lists_every_command() -> None:
    table = README.split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    listed = set(re.findall(r"^\| `chronoseal ([a-z-]+)", table, re.M))
    assert listed == commands


def test_every_linked_document_exists() -> None:
    for document in (REPO / "README.md", *(REPO / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#]+\.md)\)", document.read_text()):
            assert (document.parent / target).is_file(), (document.name, target)


def test_the_outbound_events_the_docs_list_are_the_events() -> None:
    outbound = WEBHOOKS.split("**Outbound.**", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"`(receipt\.[a-z_]+)`", outbound)
    assert tuple(listed) == EVENTS
