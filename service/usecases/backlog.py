"""Scrape-time state of the work: receipts by status, the oldest pending one, hashing backlog.

Gauges read from the database (the source of truth) when /metrics is scraped, not kept by the
processes, so they are right whichever process changed them. The answer is kept CACHE_S
seconds: several Prometheus servers, or a dashboard reload, cost one set of queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from service.storage.stats import ReceiptCounts, receipt_counts
from service.usecases.metrics import Exposition
from service.wiring import Services

log = logging.getLogger(__name__)
CACHE_S = 5.0  # below any sensible scrape interval (15 s), above a burst of scrapes
RECEIPTS = "chronoseal_receipts"
OLDEST_PENDING = "chronoseal_oldest_pending_receipt_age_seconds"
HASHING_BACKLOG = "chronoseal_hashing_backlog_receipts"


class BacklogCollector(Collector):
    """Yields the three gauges from one cached `receipt_counts` read."""

    def __init__(self, engine: Engine, cache_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._cache_s = CACHE_S if cache_s is None else cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._read: tuple[float, ReceiptCounts] | None = None

    def counts(self) -> ReceiptCounts | None:
        """The counts, read again when the cached ones are older than cache_s; None when the
        database does not answer (the scrape still shows every other family)."""
        with self._lock:
            now = self._clock()
            if self._read is None or now - self._read[0] >= self._cache_s:
                try:
                    with self._engine.connect() as conn:
                        self._read = (now, receipt_counts(conn))
                except SQLAlchemyError as exc:
                    log.warning("metrics: cannot count receipts: %s", exc.__class__.__name__)
                    return None
            return self._read[1]

    def collect(self) -> Iterable[Metric]:
        counts = self.counts()
        if counts is None:
            return []
        by_status = GaugeMetricFamily(RECEIPTS, "Receipts by status", labels=("status",))
        for status, count in counts.by_status.items():
            by_status.add_metric((status,), count)
        age = 0.0
        if counts.oldest_pending_at is not None:
            age = max(0.0, (datetime.now(UTC) - counts.oldest_pending_at).total_seconds())
        return [
            by_status,
            GaugeMetricFamily(OLDEST_PENDING, "Age of the oldest pending receipt (0: none)",
                              value=age),
            GaugeMetricFamily(HASHING_BACKLOG, "Receipts whose image awaits perceptual hashing",
                              value=counts.hash_pending),
        ]


def exposition(services: Services) -> Exposition:
    """What the API's /metrics (or the metrics port) renders for `services`' database."""
    return Exposition(BacklogCollector(services.engine))
