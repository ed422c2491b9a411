"""Log formatters: JSON lines for collectors, key=value lines for people; both mask secrets.

A JSON line is one object: `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`,
then the record's structured fields (`extra={...}` and the bound context: request_id,
receipt_id, batch_id, duration_ms...), then `exc` when there is a traceback. Secrets must never
reach a log call; `redact` is the second line of defence, masking the shapes we know.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

# Attributes every LogRecord has; anything else on a record is a structured field.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

# Known secret shapes, each masked to its label: API keys (`cs_`, storage.keys), webhook secrets
# (`whsec_`, webhooks.signing), bearer credentials and Authorization values, URL passwords.
_SECRET = re.compile(
    r"(?P<label>\b(?:cs|whsec)_)[A-Za-z0-9+/=_-]{4,}"
    r"|(?P<scheme>(?i:bearer|basic)\s+)[^\s\"'\\,;]+"
    r"|(?P<header>(?i:authorization)[\"'\\]*\s*[:=]\s*[\"'\\]*)(?!(?i:bearer|basic)\s)[^\s\"'\\,;]+"
    r"|(?P<userinfo>://[^/:@\s\"'\\]*:)[^\s\"'\\@/]*@"
)
# Cheap substring tests first: most lines hold none of these, and then no regex runs.
_HINTS = ("cs_", "whsec_", "bearer", "basic", "authorization", "://")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # RQ colours some messages when stdout is a terminal
# Built once: json.dumps with options builds an encoder per call. Compact, ASCII-only output.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def _masked(match: re.Match[str]) -> str:
    if match["userinfo"]:
        return match["userinfo"] + "***@"
    return (match["label"] or match["scheme"] or match["header"]) + "***"


def redact(text: str) -> str:
    """`text` with every known secret shape masked (`cs_***`, `Bearer ***`, `://user:***@`)."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text
    return _SECRET.sub(_masked, text)


_second: tuple[int, str] = (-1, "")  # the last second formatted: most lines share it


def rfc3339(created: float) -> str:
    """A record's time as RFC 3339 UTC with milliseconds: 2026-12-01T21:16:43.123Z."""
    global _second
    whole = int(created)
    if _second[0] != whole:  # a tuple swap is atomic: threads at worst format a second twice
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of `record`: what it carries beyond a plain LogRecord."""
    return {k: v for k, v in record.__dict__.items()
            if k not in _RECORD_ATTRS and not k.startswith("_")}


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    return _ANSI.sub("", message) if "\x1b" in message else message


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values JSON cannot hold are written as their str()."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": rfc3339(record.created),
                                 "level": record.levelname.lower(), "logger": record.name,
                                 "message": _message(record), "pid": record.process}
        entry.update(fields_of(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(_ENCODER.encode(entry))


class TextFormatter(logging.Formatter):
    """`21:16:43.123 INFO  logger: message key=value ...` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = (f"{clock}.{int(record.msecs):03d} {record.levelname:<7} {record.name}: "
                f"{_message(record)}")
        fields = fields_of(record)
        if fields:
            line += " " + " ".join(f"{k}={_shown(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return redact(line)


def _shown(value: Any) -> str:
    text = str(value)
    return text if text and not any(c.isspace() or c == '"' for c in text) else json.dumps(text)
