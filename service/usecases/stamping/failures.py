"""What happens when a TSA does not give a usable token for a batch.

Retryable failures (transport, HTTP 5xx, garbage, a token that does not verify) are scheduled
again with exponential backoff and jitter, for as long as the receipt may wait (give_up_after_s,
enforced by the sweeper). A rejection with failInfo is asked again only a few times, slowly,
then that TSA is given up for that batch; when no TSA left can bring the batch to min_tokens,
its receipts fail at once with the reason instead of waiting out give_up_after_s.
Every failure is written to batch_tsa_attempts and shown as last_error on the receipts.
Failing receipts (here or in the sweep) goes through `fail_receipts`, which writes their
receipt.failed events in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from service.errors import TSAError
from service.storage import mark_failed, record_batch_error, write_transaction
from service.storage.tables import utcnow
from service.timestamping.tsa_config import TSAConfig
from service.usecases.stamping import queries
from service.usecases.stamping.notify import record_events
from service.usecases.stamping.policy import RetryPolicy
from service.webhooks.events import FAILED

log = logging.getLogger(__name__)

HOPELESS_REASON = "no configured TSA will stamp this batch"


def fail_receipts(conn: Connection, receipt_ids: Sequence[str], reason: str,
                  now: datetime | None = None) -> list[str]:
    """Fail the still-pending receipts among `receipt_ids` and write their receipt.failed
    events, in the caller's transaction; returns the receipts failed, sorted."""
    failed = mark_failed(conn, receipt_ids, reason)
    record_events(conn, FAILED, failed, now=now or utcnow())
    return failed


class FailureRecorder:
    """Records TSA failures for batches and decides when to try again or give up."""

    def __init__(self, engine: Engine, policy: RetryPolicy, tsas: Mapping[str, TSAConfig],
                 min_tokens: int) -> None:
        self.engine = engine
        self.policy = policy
        self.tsas = tsas
        self.min_tokens = min_tokens

    def record(self, batch_id: str, tsa: TSAConfig, exc: BaseException) -> None:
        """Store the failure and the next attempt time (None: given up on this TSA)."""
        if isinstance(exc, TSAError):
            message, retryable = str(exc), exc.retryable
            log.warning("batch %s: %s", batch_id, message,
                        extra={"batch_id": batch_id, "tsa": tsa.name})
        else:  # a bug or an unexpected library error: keep retrying, but make it loud
            message, retryable = f"{tsa.name}: internal error ({type(exc).__name__})", True
            log.error("batch %s: asking %s failed", batch_id, tsa.name, exc_info=exc,
                      extra={"batch_id": batch_id, "tsa": tsa.name})
        with self.engine.connect() as conn:
            previous = queries.batch_attempts(conn, batch_id).get(tsa.name)
        attempts = (previous.attempts if previous else 0) + 1
        delay = self.policy.retry_delay(attempts, rejected=not retryable)
        next_at = None if delay is None else utcnow() + delay
        record_batch_error(self.engine, batch_id, tsa.name, _strip_name(message, tsa.name),
                           next_at, rejected=delay is None)
        if delay is None:
            log.warning("batch %s: giving up on %s after %d attempts", batch_id, tsa.name,
                        attempts, extra={"batch_id": batch_id, "tsa": tsa.name})
            self.fail_if_hopeless(batch_id)

    def fail_if_hopeless(self, batch_id: str) -> list[str]:
        """Fail the batch's pending receipts when tokens + TSAs still trying < min_tokens."""
        with write_transaction(self.engine) as conn:
            have = queries.token_tsas(conn, batch_id)
            attempts = queries.batch_attempts(conn, batch_id)
            given_up = {name for name, a in attempts.items() if a.state == "rejected"}
            trying = [name for name in self.tsas if name not in have and name not in given_up]
            if len(have) + len(trying) >= self.min_tokens:
                return []
            failed = fail_receipts(conn, queries.batch_receipt_ids(conn, batch_id),
                                   HOPELESS_REASON)
        log.warning("batch %s: %d receipt(s) failed: %s", batch_id, len(failed), HOPELESS_REASON,
                    extra={"batch_id": batch_id, "size": len(failed)})
        return failed


def _strip_name(message: str, tsa: str) -> str:
    """TSAError texts start with "<tsa>: "; record_batch_error adds the name itself."""
    prefix = f"{tsa}: "
    return message[len(prefix):] if message.startswith(prefix) else message
