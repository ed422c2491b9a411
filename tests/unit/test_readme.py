"""The README's configuration reference is the settings table, its commands exist, and it
lists the webhook events there are."""

from __future__ import annotations

import re
from pathlib import Path

from service.cli import build_parser
from service.settings import SETTINGS, settings_markdown
from service.webhooks.events import EVENTS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_configuration_reference_matches_settings() -> None:
    assert settings_markdown() in README
    for setting in SETTINGS:
        assert f"`{setting.env}`" in README


def test_the_cli_commands_the_readme_names_exist() -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    for name in ("up", "serve", "worker", "tsa", "keys", "db", "verify-token", "sweep"):
        assert name in commands
        assert f"chronoseal {name}" in README or name in {"db", "sweep"}


def test_the_outbound_events_the_readme_lists_are_the_events() -> None:
    outbound = README.split("**Outbound.**", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"`(receipt\.[a-z_]+)`", outbound)
    assert tuple(listed) == EVENTS
