"""The sweeper thread every worker process runs; a Redis key makes one of them act per interval.

Each worker wakes about twice per `sweep_interval_s` and tries `SET <prefix>:sweep-turn NX PX
interval`. Whoever sets the key sweeps; the key then expires on its own after one interval, so
across any number of machines about one sweep happens per interval, and if the sweeping
process dies another one takes the next turn within 1.5 intervals. The key is never deleted:
it is a turn, not a mutex held across the sweep (sweeps are idempotent and take milliseconds,
so an overlap after a very slow sweep would cost a duplicate query, not a wrong result).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

import redis

from service.usecases.queueing import key_prefix
from service.wiring import Services

log = logging.getLogger(__name__)

# Wake this fraction of the interval (with jitter) so a dead sweeper's turn passes quickly.
WAKE_FRACTION = 0.5
JITTER_FRACTION = 0.2  # spread the workers' wake-ups so they do not all race for the key


def sweep_turn_key(services: Services) -> str:
    return f"{key_prefix(services.settings)}:sweep-turn"


def take_sweep_turn(services: Services, owner: str) -> bool:
    """True when this process may sweep now (it set the turn key for one interval)."""
    interval_ms = max(1, int(services.settings.sweep_interval_s * 1000))
    return bool(services.redis.set(sweep_turn_key(services), owner, nx=True, px=interval_ms))


class SweeperThread(threading.Thread):
    """Calls `sweep()` whenever this process wins the turn; stops promptly on `stop()`."""

    def __init__(self, services: Services, sweep: Callable[[], object], owner: str) -> None:
        super().__init__(name="chronoseal-sweeper", daemon=True)
        self._services = services
        self._sweep = sweep
        self._owner = owner
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = max(0.1, float(self._services.settings.sweep_interval_s))
        rng = random.Random()  # noqa: S311 - jitter only
        while True:
            wake = interval * WAKE_FRACTION * (1 + rng.uniform(-JITTER_FRACTION, JITTER_FRACTION))
            if self._stopped.wait(wake):
                return
            self.sweep_once()

    def sweep_once(self) -> bool:
        """Sweep if it is our turn; errors are logged (Redis or the database may be down)."""
        try:
            if not take_sweep_turn(self._services, self._owner):
                return False
            report = self._sweep()
            log.info("sweep: %s", report)
            return True
        except redis.RedisError as exc:
            log.warning("sweeper: Redis unavailable: %s", exc)
        except Exception:
            log.exception("sweeper: sweep failed; trying again next interval")
        return False

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout)
