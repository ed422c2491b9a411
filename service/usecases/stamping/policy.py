"""How long batches are leased and when a failed TSA is asked again, with the reasons.

The defaults suit public TSAs over the Internet; deployments and tests change them through
settings (`CHRONOSEAL_TSA_RETRY_BASE_S` and friends, see service/settings.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from service.settings import Settings, default_of

# Backoff and lease defaults, with their reasons, are settings (service/settings.py).
RETRY_BASE_S: float = default_of("tsa_retry_base_s")
RETRY_MAX_S: float = default_of("tsa_retry_max_s")
REJECTED_RETRY_S: float = default_of("tsa_rejected_retry_s")
REJECTED_MAX_ATTEMPTS: int = default_of("tsa_rejected_max_attempts")
LEASE_MARGIN_S: float = default_of("batch_lease_margin_s")
# Poll the backlog about 4 times per batch_max_wait_ms while a batch may fill before its
# deadline (Stamper.wait_for_batch): a full batch is claimed at most a quarter of the wait late;
# a backlog too slow to fill is counted once and claimed at the deadline.
FILL_POLLS_PER_WAIT = 4
FILL_POLL_MIN_S = 0.01  # each poll is two index queries
FILL_POLL_MAX_S = 0.1

@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and lease parameters; build with `RetryPolicy.from_settings(settings)`."""

    retry_base_s: float = RETRY_BASE_S
    retry_max_s: float = RETRY_MAX_S
    rejected_retry_s: float = REJECTED_RETRY_S
    rejected_max_attempts: int = REJECTED_MAX_ATTEMPTS
    lease_margin_s: float = LEASE_MARGIN_S

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy configured by CHRONOSEAL_TSA_RETRY_* and CHRONOSEAL_BATCH_LEASE_MARGIN_S."""
        return cls(
            retry_base_s=settings.tsa_retry_base_s,
            retry_max_s=settings.tsa_retry_max_s,
            rejected_retry_s=settings.tsa_rejected_retry_s,
            rejected_max_attempts=settings.tsa_rejected_max_attempts,
            lease_margin_s=settings.batch_lease_margin_s,
        )

    def retry_delay(self, attempts: int, *, rejected: bool, rng: random.Random | None = None
                    ) -> timedelta | None:
        """Delay before the next attempt after `attempts` failures; None means give up.

        Transport and verification failures back off exponentially with "equal jitter" (half
        fixed, half random) so workers that failed together do not retry in lockstep.
        """
        rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        if rejected:
            if attempts >= self.rejected_max_attempts:
                return None
            return timedelta(seconds=self.rejected_retry_s * rng.uniform(0.9, 1.1))
        ceiling = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, attempts - 1))
        return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))

    def lease_s(self, tsa_timeouts_s: list[float]) -> float:
        """Lease for a batch: the slowest TSA's full timeout plus the margin."""
        return max(tsa_timeouts_s, default=0.0) + self.lease_margin_s


def fill_poll_s(batch_max_wait_ms: int) -> float:
    """How often a filling batch re-counts the backlog (FILL_POLLS_PER_WAIT, within bounds)."""
    seconds = batch_max_wait_ms / 1000 / FILL_POLLS_PER_WAIT
    return min(FILL_POLL_MAX_S, max(FILL_POLL_MIN_S, seconds))
