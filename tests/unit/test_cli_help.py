"""`chronoseal --help` and each command's help read well for a new user."""

from __future__ import annotations

import pytest

from service.cli import build_parser


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([*argv, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_says_what_chronoseal_is_and_lists_commands(capsys) -> None:
    text = _help(capsys)
    assert "RFC 3161" in text and "module" not in text
    for command in ("up", "stamp", "verify", "keys"):
        assert f"    {command}" in text


def test_options_show_their_defaults(capsys) -> None:
    text = " ".join(_help(capsys, "stamp").split())
    assert "--jobs JOBS uploads in flight, and threads fetching bundles (default: 4)" in text


def test_help_cites_no_file_the_repository_lacks(capsys) -> None:
    for command in ("verify", "verify-token", "up", "stamp"):
        assert "DESIGN.md" not in _help(capsys, command)
