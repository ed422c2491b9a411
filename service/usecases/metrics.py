"""Chronoseal's metric families (Prometheus): defined once here, recorded by the use cases.

Why the application layer: what is counted happens in use cases (an upload registered, a batch
claimed, a TSA asked, a delivery made, a search run), and both processes that record (API and
workers) already call them; the domain packages stay free of prometheus_client, and the web
layer only renders what `Exposition` gives it (service/web/metrics.py).

Families are process-wide objects, unlike settings and connections (no per-app copies): the
client keeps one value per family and process. With PROMETHEUS_MULTIPROC_DIR set when
prometheus_client is first imported, each process writes its values to its own file there and
`Exposition` sums the files of every process on the machine (`chronoseal serve`, `worker` and
`up` set it first: service/runtime/metrics_dir.py); without it (tests, scripts) the values
live in this process and `Exposition` shows those.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_dead
from prometheus_client.registry import Collector

# Decided by prometheus_client at its import, from the environment; read back, not re-guessed.
MULTIPROCESS = values.ValueClass is not values.MutexValue

KiB = 1024
# Seconds: API requests take milliseconds; uploads of 50 MiB over slow links take minutes.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0, 120.0, 600.0)
UPLOAD_BUCKETS = tuple(float(KiB * 4**n) for n in range(1, 10))  # 4 KiB .. 256 MiB, x4
BATCH_BUCKETS = tuple(float(2**n) for n in range(0, 13))  # 1 .. 4096 receipts (max 256 default)
# TSA round trips: the built-in TSA answers in milliseconds, public ones in 0.1-2 s, timeouts 30 s.
TSA_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER_METHOD = "other"  # any method token is valid HTTP: unknown ones share one label value
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_RECORDED = CollectorRegistry()  # the families below; exposed when not in multiprocess mode

HTTP_REQUESTS = Counter(
    "chronoseal_http_requests", "API requests answered, by method, route (URL rule) and status",
    ("method", "route", "status"), registry=_RECORDED)
HTTP_DURATION = Histogram(
    "chronoseal_http_request_duration_seconds", "API request handling time, by method and route",
    ("method", "route"), buckets=HTTP_BUCKETS, registry=_RECORDED)
UPLOAD_BYTES = Histogram(
    "chronoseal_upload_bytes", "Sizes of accepted uploaded images (new registrations)",
    buckets=UPLOAD_BUCKETS, registry=_RECORDED)
BATCH_RECEIPTS = Histogram(
    "chronoseal_batch_receipts", "Receipts per claimed stamping batch (Merkle tree size)",
    buckets=BATCH_BUCKETS, registry=_RECORDED)
TSA_DURATION = Histogram(
    "chronoseal_tsa_request_duration_seconds",
    "Time to get and verify a token from a TSA, by TSA and outcome (ok, error)",
    ("tsa", "outcome"), buckets=TSA_BUCKETS, registry=_RECORDED)
TSA_FAILURES = Counter(
    "chronoseal_tsa_failures", "Failed TSA requests, by TSA and error class",
    ("tsa", "error"), registry=_RECORDED)
WEBHOOK_DELIVERIES = Counter(
    "chronoseal_webhook_deliveries",
    "Webhook delivery attempts, by outcome (succeeded, retrying, failed)",
    ("outcome",), registry=_RECORDED)
SEARCH_DURATION = Histogram(
    "chronoseal_search_duration_seconds", "Time to answer a similar-image search",
    buckets=SEARCH_BUCKETS, registry=_RECORDED)


class HttpRecorder:
    """Records one answered request: a counter increment and a histogram observation, with the
    labelled children looked up once per (method, route, status) and kept, so a request costs
    two dictionary lookups and two additions."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        # Keyed by the method as labelled: random method names must not grow this dict.
        key = (method if method in KNOWN_METHODS else OTHER_METHOD, route, status)
        children = self._children.get(key)
        if children is None:
            children = (HTTP_REQUESTS.labels(key[0], route, str(status)),
                        HTTP_DURATION.labels(key[0], route))
            self._children[key] = children  # a race stores the same children twice: harmless
        children[0].inc()
        children[1].observe(seconds)


def observe_upload(size: int) -> None:
    UPLOAD_BYTES.observe(size)


def observe_batch(receipts: int) -> None:
    BATCH_RECEIPTS.observe(receipts)


def observe_tsa(tsa: str, seconds: float, error: BaseException | None) -> None:
    """One TSA request: its time by outcome, and its error class when it failed."""
    TSA_DURATION.labels(tsa, "ok" if error is None else "error").observe(seconds)
    if error is not None:
        TSA_FAILURES.labels(tsa, type(error).__name__).inc()


def count_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()


@contextmanager
def timed_search() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        SEARCH_DURATION.observe(time.perf_counter() - started)


def mark_process_dead(pid: int) -> None:
    """Drop the live-gauge files of an exited process (gunicorn's child_exit hook)."""
    if MULTIPROCESS:
        _mark_dead(pid)  # type: ignore[no-untyped-call]


class _Recorded(Collector):
    """This process's own families (single-process mode)."""

    def collect(self) -> Iterable[Metric]:
        return _RECORDED.collect()


class Exposition:
    """What one /metrics renders: the recorded families (of every process on the machine in
    multiprocess mode) and collectors read at scrape time (usecases.backlog)."""

    def __init__(self, *collectors: Collector) -> None:
        self.registry = CollectorRegistry()
        if MULTIPROCESS:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry.register(_Recorded())
        for collector in collectors:
            self.registry.register(collector)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
