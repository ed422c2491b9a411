"""Fields carried on every log line made in this context (a request, a job): contextvars.

A `ContextFilter` on the handler copies them onto each record, so a call site logs with plain
`log.info(...)` and still gets the request id. Values are copy-on-write: a nested `bind` or a
`note` never changes what an outer context (or another thread) sees.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from typing import Any

_FIELDS: ContextVar[dict[str, Any]] = ContextVar("chronoseal_log_fields", default={})  # noqa: B039


def bind(**fields: Any) -> Token[dict[str, Any]]:
    """Carry `fields` (on top of those bound already) until `unbind(token)`."""
    return _FIELDS.set({**_FIELDS.get(), **fields})


def unbind(token: Token[dict[str, Any]]) -> None:
    """Restore the fields as they were before the `bind` that returned `token`."""
    _FIELDS.reset(token)


def note(**fields: Any) -> None:
    """Add `fields` to the current context (a receipt id learnt mid-request); undone with it."""
    _FIELDS.set({**_FIELDS.get(), **fields})


def current_fields() -> dict[str, Any]:
    """The fields bound now (read-only by convention)."""
    return _FIELDS.get()


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record; a field the call site gave itself wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _FIELDS.get()
        if fields:
            attrs = record.__dict__
            for key, value in fields.items():
                attrs.setdefault(key, value)
        return True
