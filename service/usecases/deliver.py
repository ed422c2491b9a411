"""Sending one delivery attempt: check the URL, sign, POST, record the outcome and the next try.

Schedule (settings `webhook_retry_schedule_s`): entry n is the delay before attempt n+1, so the
default (0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) is Standard Webhooks' advice; after the
last entry the delivery is failed. A 2xx answer is success; anything else, a timeout or a
refused connection is retried. A URL refused by the SSRF guard fails at once: it would be
refused on every attempt, and no traffic is sent to it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from service.settings import Settings
from service.storage.engine import write_transaction
from service.storage.tables import utcnow
from service.storage.webhooks import delivery_for_attempt, record_attempt
from service.usecases.metrics import count_delivery
from service.webhooks.errors import ResolutionError, TransportError, URLRefusedError
from service.webhooks.secretbox import SecretBox
from service.webhooks.signing import new_secret, sign_headers
from service.webhooks.ssrf import Allowlist, Resolver, check_url, system_resolver
from service.webhooks.transport import Timeouts, post

log = logging.getLogger(__name__)

ENDPOINT_GONE = "endpoint deleted"
# A claimed delivery is due again this long after its attempt's own timeouts: by then a live
# job has finished, so only a lost job (Redis flushed, worker killed) is sent again.
LEASE_MARGIN_S = 30.0


@dataclass(frozen=True)
class DeliveryOptions:
    """What an attempt needs from settings; `resolver` is injectable for tests. `secrets` opens
    the stored secrets (None: they are stored unsealed, as tests writing storage directly do)."""

    allowlist: Allowlist
    schedule_s: tuple[float, ...]
    timeouts: Timeouts
    resolver: Resolver = system_resolver
    secrets: SecretBox | None = None

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver = system_resolver,
                      secrets: SecretBox | None = None) -> DeliveryOptions:
        return cls(Allowlist.parse(settings.webhook_allowlist),
                   settings.webhook_retry_schedule_s,
                   Timeouts(settings.webhook_connect_timeout_s, settings.webhook_timeout_s),
                   resolver, secrets)

    def lease_s(self) -> float:
        """How long a claimed delivery is left to its job before it is due again."""
        return self.timeouts.connect_s + self.timeouts.total_s + LEASE_MARGIN_S


def deliver(engine: Engine, delivery_id: str, options: DeliveryOptions) -> str:
    """Make one attempt at a pending delivery; returns its status afterwards.

    Idempotent enough for RQ: a delivery no longer pending is left alone. Receivers deduplicate
    by webhook-id (the delivery id), as Standard Webhooks asks of them.
    """
    box = options.secrets
    if_missing = box.seal(new_secret()) if box else new_secret()
    with write_transaction(engine) as conn:
        delivery, secret = delivery_for_attempt(conn, delivery_id, secret_if_missing=if_missing)
    if secret is not None and box is not None:
        secret = box.open(secret)  # cached: one decryption per secret per process
    if delivery.status != "pending":
        return delivery.status
    status_code: int | None = None
    started_at, started = utcnow(), time.perf_counter()
    try:
        if secret is None:
            raise URLRefusedError(ENDPOINT_GONE)
        target = check_url(delivery.url, options.allowlist, resolver=options.resolver)
        body = delivery.payload.encode("utf-8")
        answer = post(target, sign_headers(secret, delivery.id, body), body, options.timeouts)
        status_code = answer.status
        ok = 200 <= answer.status < 300
        error = None if ok else f"HTTP {answer.status}: " + answer.body_head.decode(
            "utf-8", "replace")
        final = False
    except ResolutionError as exc:  # DNS may answer again later: retried like a timeout
        ok, error, final = False, str(exc), False
    except URLRefusedError as exc:
        ok, error, final = False, f"refused: {exc}", True
    except TransportError as exc:
        ok, error, final = False, str(exc), False
    duration_ms = round((time.perf_counter() - started) * 1000, 1)  # the attempt, not the writes
    now = utcnow()
    attempts = delivery.attempts + 1
    next_at = None
    if not ok and not final and attempts < len(options.schedule_s):
        next_at = now + timedelta(seconds=options.schedule_s[attempts])
    with write_transaction(engine) as conn:
        status = record_attempt(conn, delivery.id, succeeded=ok, status_code=status_code,
                                error=error, next_attempt_at=next_at, started_at=started_at,
                                now=now)
    count_delivery("succeeded" if ok else "retrying" if status == "pending" else "failed")
    # The receiver's answer (error's body head) stays in the delivery log, not in ours.
    log.log(logging.INFO if ok else logging.WARNING, "delivery %s (%s) attempt %d: %s",
            delivery.id, delivery.event, attempts, status, extra={
                "delivery_id": delivery.id, "event": delivery.event, "attempt": attempts,
                "outcome": "delivered" if ok else status, "http_status": status_code,
                "reason": None if ok or status_code is not None else error,
                "duration_ms": duration_ms})
    return status
