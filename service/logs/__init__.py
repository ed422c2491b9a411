"""Structured logs: one configuring function for every process, JSON lines or human lines.

`configure_logging` (setup) is called by each service command (`up`, `serve`, `worker`, `tsa`);
`bind`/`note` (context) put fields such as the request id on every line logged meanwhile; the
formatters (formatting) write them and mask known secret shapes as a second line of defence.
"""

from service.logs.context import bind, note, unbind
from service.logs.setup import choose_format, configure_logging

__all__ = ["bind", "choose_format", "configure_logging", "note", "unbind"]
