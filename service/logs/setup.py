"""`configure_logging`: how every Chronoseal process logs (API, workers, TSA, supervisor, CLI).

One handler on the root logger, writing to stderr: JSON lines when stderr is not a terminal
(a container, a file, a collector, `chronoseal up`'s children writing to a pipe), human lines
when it is; settings `log_format` forces either. Children of `chronoseal up` inherit its stderr
and decide the same way, so the service writes one format. Libraries (gunicorn via
service.cli.gunicorn_logs, RQ, Alembic) log through this handler instead of their own.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from service.logs.context import ContextFilter
from service.logs.formatting import JsonFormatter, TextFormatter
from service.settings import Settings

_OURS = "_chronoseal_handler"  # marks the handler so that configuring again replaces it
# Libraries that narrate their work at INFO: WeasyPrint logs about ten "Step N - ..." lines per
# exhibit PDF (10,000 lines for a 1,000-file `chronoseal stamp`), fontTools its subsetting.
# Their warnings and errors still come through.
QUIET_LIBRARIES = ("weasyprint", "fontTools")


def choose_format(wanted: str, stream: TextIO) -> str:
    """`json` or `text`: `wanted` unless it is `auto`, then text only on a terminal."""
    if wanted != "auto":
        return wanted
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return "json"


def configure_logging(settings: Settings, stream: TextIO | None = None,
                      level: str | None = None) -> logging.Handler:
    """Log every logger's records at `level` (default settings.log_level) to `stream` (stderr),
    in the format settings.log_format chooses; returns the handler. Idempotent."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    json_lines = choose_format(settings.log_format, stream) == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(ContextFilter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or settings.log_level).upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
