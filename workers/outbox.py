"""The outbox pump thread: every worker polls for due deliveries and inbound messages
(usecases.outbox); a Redis key gives one worker the turn per interval."""

from __future__ import annotations

import logging
import threading

import redis

from service.usecases.outbox import pump_once, turn_key
from service.wiring import Services

log = logging.getLogger(__name__)


class OutboxPump(threading.Thread):
    """Calls `pump_once` every webhook_poll_interval_s when this process wins the turn."""

    def __init__(self, services: Services, owner: str) -> None:
        super().__init__(name="chronoseal-outbox", daemon=True)
        self._services = services
        self._owner = owner
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = max(0.05, self._services.settings.webhook_poll_interval_s)
        while not self._stopped.wait(interval):
            try:
                if self._services.redis.set(turn_key(self._services), self._owner, nx=True,
                                            px=max(1, int(interval * 1000))):
                    pump_once(self._services)
            except redis.RedisError as exc:
                log.warning("outbox: Redis unavailable: %s", exc)
            except Exception:
                log.exception("outbox: poll failed; trying again")

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout)
