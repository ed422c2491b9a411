"""The README's configuration reference is the settings table, and its commands exist."""

from __future__ import annotations

from pathlib import Path

from service.cli import build_parser
from service.settings import SETTINGS, settings_markdown

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
