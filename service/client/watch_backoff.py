"""How long the watcher waits before trying an unreachable server again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

BACKOFF_FIRST_S = 1.0  # the first retry after a failed attempt
DEFAULT_RETRY_MAX_S = 60.0  # a server down for hours is tried once a minute, not hammered


class Backoff:
    """Exponential back-off with jitter, reset by a success."""

    def __init__(self, maximum_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum_s, self.clock = maximum_s, clock
        self.failures = 0
        self.until = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.until

    def wait_s(self) -> float:
        return max(0.0, self.until - self.clock())

    def failed(self) -> float:
        delay = min(BACKOFF_FIRST_S * 2.0 ** min(self.failures, 30), self.maximum_s)
        delay *= random.uniform(0.8, 1.0)  # noqa: S311 - spreads retries, no secret
        self.failures += 1
        self.until = self.clock() + delay
        return delay

    def succeeded(self) -> bool:
        """Reset; True when this ends a run of failures."""
        was_failing = self.failures > 0
        self.failures, self.until = 0, 0.0
        return was_failing
