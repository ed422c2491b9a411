"""Stamping: batches of receipts, Merkle roots, tokens from every TSA, retries and the sweep.

Domain code: no RQ, no Redis, no Flask. The worker (workers/) calls `Stamper` for jobs and
`sweep` periodically; enqueueing is passed in as callables.
"""

from service.stamping.batch import BatchOptions, Stamper
from service.stamping.policy import RetryPolicy
from service.stamping.requester import TokenRequester
from service.stamping.sweep import SweepReport, sweep

__all__ = ["BatchOptions", "RetryPolicy", "Stamper", "SweepReport", "TokenRequester", "sweep"]
