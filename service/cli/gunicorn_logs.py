"""gunicorn's logger, writing through Chronoseal's root handler (service.logs) instead of its own.

gunicorn gives `gunicorn.error` a handler with its own format and stops propagation; this
class removes that handler, so start-up, worker and error lines come out in the service's
format (JSON lines or human lines). The access log stays off: the API writes its own request
line (service.web.request_log), with the request id and without headers.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger


class RootLogger(Logger):  # type: ignore[misc]
    """`logger_class` for the API and the built-in TSA."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)
            log.propagate = True
