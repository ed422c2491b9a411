"""The stamp use case's machinery: batches of receipts, Merkle roots, tokens from every TSA,
retries, the stamped/failed decision with its events, and the stamping sweep.

No RQ, Redis or Flask here: usecases.stamp and usecases.sweep wire it to settings and the
queue; enqueueing is passed in as callables.
"""

from service.usecases.stamping.batch import BatchOptions, Stamper
from service.usecases.stamping.policy import RetryPolicy
from service.usecases.stamping.requester import TokenRequester
from service.usecases.stamping.sweep import SweepReport, sweep

__all__ = ["BatchOptions", "RetryPolicy", "Stamper", "SweepReport", "TokenRequester", "sweep"]
