"""How long batches are leased and when a failed TSA is asked again, with the reasons.

The defaults suit public TSAs over the Internet; tests shorten them through the environment
(`CHRONOSEAL_TSA_RETRY_BASE_MS` and friends below), never by editing constants.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from service.errors import ConfigError

# First retry after about this long: most TSA failures are a dropped connection or a 503 blip.
RETRY_BASE_S = 2.0
# Doubling stops here: a TSA that is down for hours is still asked every ten minutes.
RETRY_MAX_S = 600.0
# A rejection (PKIStatus with failInfo) rarely heals by itself, but timeNotAvailable or
# systemFailure can be transient: ask again this much later, a few times, then give up.
REJECTED_RETRY_S = 900.0
REJECTED_MAX_ATTEMPTS = 3
# A worker holds its batch this long past its TSAs' timeouts before others may take it over;
# it renews the lease while it waits, so this only bounds the delay after a crash.
LEASE_MARGIN_S = 30.0
# Poll the backlog about 4 times per batch_max_wait_ms while a batch fills: a full batch is
# claimed at most a quarter of the wait late, and an idle worker costs few queries.
FILL_POLLS_PER_WAIT = 4
FILL_POLL_MIN_S = 0.01  # each poll is two index queries
FILL_POLL_MAX_S = 0.1

ENV = {
    "retry_base_s": "CHRONOSEAL_TSA_RETRY_BASE_S",
    "retry_max_s": "CHRONOSEAL_TSA_RETRY_MAX_S",
    "rejected_retry_s": "CHRONOSEAL_TSA_REJECTED_RETRY_S",
    "rejected_max_attempts": "CHRONOSEAL_TSA_REJECTED_MAX_ATTEMPTS",
    "lease_margin_s": "CHRONOSEAL_BATCH_LEASE_MARGIN_S",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and lease parameters; build with `RetryPolicy.from_env(os.environ)`."""

    retry_base_s: float = RETRY_BASE_S
    retry_max_s: float = RETRY_MAX_S
    rejected_retry_s: float = REJECTED_RETRY_S
    rejected_max_attempts: int = REJECTED_MAX_ATTEMPTS
    lease_margin_s: float = LEASE_MARGIN_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """Defaults overridden by CHRONOSEAL_TSA_RETRY_* / CHRONOSEAL_BATCH_LEASE_MARGIN_S."""
        values: dict[str, float | int] = {}
        for name, var in ENV.items():
            if var in env:
                try:
                    number = float(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var}: not a number: {env[var]!r}") from exc
                if number < 0:
                    raise ConfigError(f"{var}: must not be negative")
                values[name] = int(number) if name == "rejected_max_attempts" else number
        return cls(**values)  # type: ignore[arg-type]

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
