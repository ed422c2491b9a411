"""Every command of every shell block in README.md and docs/*.md is checked against the code.

What each kind of command is checked by (tests/e2e/test_quickstart.py runs the quick start and
the dispute commands for real against a running `chronoseal up`):
- `.venv/bin/chronoseal ...`: parsed by the real argument parser (an unknown option, a missing
  required one or a wrong choice fails);
- `curl ... URL`: the URL's path and method are matched against the API's routes;
- `make TARGET`: the Makefile has the target;
- `.venv/bin/python bench/X.py`: the benchmark exists and parses the options shown;
- `python3 verify.py ...`: parsed by the bundle's verify.py parser; `python3 -m zipfile`: the
  standard library's own command;
- `$(...)`: the command inside is checked as above.
Anything else must be a standard tool a reader has (listed below), so a new kind of command
cannot slip in unchecked.
"""

from __future__ import annotations

import argparse
import re
import runpy
import shlex
from urllib.parse import urlsplit

import pytest

from service.cli import build_parser
from service.evidence.templates import verify as bundle_verify
from service.settings import load_settings
from service.web.app import create_app
from service.wiring import Services
from tests.support.doc_commands import DOCUMENTS, REPO, Command, commands

STANDARD_TOOLS = frozenset({"cd", "export", "sha256sum", "tail", "cut"})
# Optional third-party tools the docs mention, not installed here: run by hand with the options
# shown when the docs were written (rq-dashboard 0.9.0 on rq 3.0.0, 2026-12-01).
THIRD_PARTY = frozenset({"~/rq-dashboard/bin/pip", "~/rq-dashboard/bin/rq-dashboard"})
ALL = [c for path in DOCUMENTS for c in commands(path)]


def test_the_documents_have_commands() -> None:
    names = {c.document for c in ALL}
    assert {"README.md", "api.md", "webhooks.md", "development.md"} <= names
    assert any(c.text.startswith(".venv/bin/chronoseal stamp my-image.png") for c in ALL)


def _inner_commands(text: str) -> list[str]:
    """The commands inside $(...) of `text` (the first stage of each pipeline)."""
    return [inner.split("|")[0].strip() for inner in re.findall(r"\$\(([^()]*)\)", text)]


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z_-]*):", (REPO / "Makefile").read_text(), re.M))


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory):
    """The API's URL map, bound for matching (the app is built, never served)."""
    tmp = tmp_path_factory.mktemp("routes")
    settings = load_settings(env={}, config_file=tmp / "absent.toml", data_dir=str(tmp))
    from service.storage import make_engine

    app = create_app(Services(settings, make_engine(f"sqlite:///{tmp / 'db'}"), None))  # type: ignore[arg-type]
    return app.url_map.bind("127.0.0.1")


def _check_chronoseal(words: list[str]) -> None:
    try:
        build_parser().parse_args(words)
    except SystemExit as exc:
        raise AssertionError(f"chronoseal {' '.join(words)}: refused by the parser") from exc


def _check_curl(words: list[str], routes) -> None:
    [url] = [w for w in words if w.startswith("http")]
    method = words[words.index("-X") + 1] if "-X" in words else (
        "POST" if {"-F", "-d"} & set(words) else "GET")
    routes.match(urlsplit(url).path, method=method)  # NotFound / MethodNotAllowed otherwise


def _check_python(words: list[str]) -> None:
    script = REPO / words[0]
    assert script.is_file(), script
    namespace = runpy.run_path(str(script), run_name="doc_check")
    parser_of = [v for v in namespace.values() if isinstance(v, argparse.ArgumentParser)]
    if words[1:]:  # options shown: the benchmark's own parser must take them
        assert parser_of, f"{script.name} shows options but has no module-level parser"
        parser_of[0].parse_args(words[1:])


def check(command: Command, routes) -> None:
    for inner in _inner_commands(command.text):
        check(Command(command.document, command.block, inner), routes)
    words = shlex.split(re.sub(r"\$\([^()]*\)", "SUBSTITUTED", command.text))
    if "=" in words[0] and not words[0].startswith("-"):  # KEY=value: the value was checked
        return
    tool, args = words[0], words[1:]
    if tool == ".venv/bin/chronoseal":
        _check_chronoseal(args)
    elif tool == "curl":
        _check_curl(args, routes)
    elif tool == "make":
        assert args[0] in _make_targets(), f"make {args[0]}: no such target"
    elif tool == ".venv/bin/python":
        _check_python(args)
    elif tool == "python3" and args[0] == "verify.py":
        bundle_verify.build_parser().parse_args(args[1:])
    elif tool == "python3" and args[:2] == ["-m", "zipfile"]:
        assert args[2] in ("-e", "-l", "-t"), args  # the standard library's own CLI
    elif tool == "python3" and args[:2] == ["-m", "venv"]:
        assert len(args) == 3, args
    else:
        assert tool in STANDARD_TOOLS | THIRD_PARTY, (
            f"{command.document}: unchecked command {command.text!r}")


@pytest.mark.parametrize("command", ALL, ids=lambda c: f"{c.document}#{c.block}:{c.text[:40]}")
def test_every_documented_command_is_one_the_code_takes(command: Command, routes) -> None:
    check(command, routes)


def test_the_checks_catch_a_wrong_command(routes) -> None:
    for wrong in (".venv/bin/chronoseal stamp --no-such-option a.png",
                  "curl -s http://127.0.0.1:8318/v1/no-such-route",
                  "curl -s -X DELETE http://127.0.0.1:8318/v1/stamps",
                  "make deploy", "rm -rf /"):
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do
            check(Command("test", 0, wrong), routes)
    assert shlex.split("a") == ["a"]
