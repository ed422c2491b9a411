"""service.logs: one configuring function, text on a terminal and JSON lines otherwise, context
fields on every line, secrets masked; request ids bounded (service.web.request_log)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.logs import bind, choose_format, configure_logging, note, unbind
from service.logs.formatting import redact
from service.settings import Settings, load_settings
from service.web.request_log import MAX_REQUEST_ID_CHARS, request_id

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, as sys.stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[None]:
    """Leave the root logger's handlers and level as they were (pytest's own among them)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _settings(**overrides: object) -> Settings:
    return load_settings(env={}, config_file=Path("/nonexistent/chronoseal.toml"), **overrides)


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert choose_format("auto", FakeTerminal()) == "text"
    assert choose_format("auto", io.StringIO()) == "json"
    assert choose_format("json", FakeTerminal()) == "json"
    assert choose_format("text", io.StringIO()) == "text"


def test_a_closed_or_odd_stream_gets_json() -> None:
    closed = io.StringIO()
    closed.close()
    assert choose_format("auto", closed) == "json"


def test_configure_writes_human_lines_to_a_terminal(restore_root: None) -> None:
    terminal = FakeTerminal()
    configure_logging(_settings(), stream=terminal)
    logging.getLogger("chronoseal.test").info("hello %s", "world", extra={"batch_id": "bat_1"})
    line = terminal.getvalue().strip()
    assert "INFO" in line and "chronoseal.test: hello world" in line
    assert "batch_id=bat_1" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_configure_writes_json_lines_elsewhere(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging(_settings(), stream=stream)
    token = bind(request_id="req-1")
    try:
        note(receipt_id="rcp_1")
        logging.getLogger("chronoseal.test").warning("slow %d", 3, extra={"duration_ms": 1.5})
    finally:
        unbind(token)
    logging.getLogger("chronoseal.test").info("after")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert RFC3339_UTC.fullmatch(first["time"])
    assert first["level"] == "warning" and first["logger"] == "chronoseal.test"
    assert first["message"] == "slow 3" and first["duration_ms"] == 1.5
    assert first["request_id"] == "req-1" and first["receipt_id"] == "rcp_1"
    assert "request_id" not in second and "receipt_id" not in second  # unbound with its request


def test_configuring_again_replaces_the_handler_and_the_setting_forces_text(
        restore_root: None) -> None:
    configure_logging(_settings(), stream=io.StringIO())
    stream = io.StringIO()
    configure_logging(_settings(log_format="text", log_level="warning"), stream=stream)
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)
            and getattr(h, "_chronoseal_handler", False)]
    assert len(ours) == 1
    logging.getLogger("chronoseal.test").info("hidden")
    logging.getLogger("chronoseal.test").warning("shown")
    assert stream.getvalue().count("\n") == 1 and "shown" in stream.getvalue()
    assert not stream.getvalue().startswith("{")


def test_weasyprints_progress_lines_are_left_out_but_its_warnings_kept(
        restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging(_settings(), stream=stream)
    try:
        logging.getLogger("weasyprint.progress").info("Step 2 - Fetching and parsing CSS")
        logging.getLogger("weasyprint").warning("Ignored `gap: 1rem`")
        logging.getLogger("chronoseal.test").info("ours")
        messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
        assert messages == ["Ignored `gap: 1rem`", "ours"]
    finally:
        for name in ("weasyprint", "fontTools"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_a_traceback_stays_inside_one_json_line(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging(_settings(), stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("chronoseal.test").exception("failed")
    (line,) = stream.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exc"]


@pytest.mark.parametrize(("text", "hidden"), [
    ("key cs_AbCdEf0123456789_-xyz given", "AbCdEf0123456789"),
    ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw= made", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ('{"Authorization": "Bearer sometoken123"}', "sometoken123"),
    ("authorization=opaque-credential", "opaque-credential"),
    ("Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("redis://user:hunter2@db:6379/0", "hunter2"),
])
def test_known_secret_shapes_are_masked(text: str, hidden: str) -> None:
    assert hidden not in redact(text)


def test_ordinary_text_is_left_alone() -> None:
    line = '{"receipt_id":"rcp_01M8SQ","route":"/v1/stamps","metrics_x":1,"url":"https://h/p"}'
    assert redact(line) == line


def test_masking_applies_to_both_formats(restore_root: None) -> None:
    for log_format in ("json", "text"):
        stream = io.StringIO()
        configure_logging(_settings(log_format=log_format), stream=stream)
        logging.getLogger("chronoseal.test").info("got %s", "Bearer cs_secretsecret")
        assert "secretsecret" not in stream.getvalue()


@pytest.mark.parametrize("given", ["abc-123", "f" * MAX_REQUEST_ID_CHARS,
                                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
def test_a_bounded_visible_ascii_request_id_is_kept(given: str) -> None:
    assert request_id(given) == given


@pytest.mark.parametrize("hostile", ["", "f" * (MAX_REQUEST_ID_CHARS + 1), "a b", "a\tb",
                                     "line\r\nforged: 1", "\x1b[31mred", "caf\u00e9"])
def test_a_hostile_request_id_is_replaced(hostile: str) -> None:
    made = request_id(hostile)
    assert made != hostile and re.fullmatch(r"[0-9a-f]{32}", made)
    assert request_id(None) != request_id(None)
