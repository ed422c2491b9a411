"""Webhook events for receipt changes, written to the outbox in the change's own transaction.

Storage reads the facts and writes the rows; service.webhooks.events shapes the payload. Both
happen on the caller's connection, so an event exists exactly when its change committed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Connection

from service.storage.webhooks import insert_deliveries, receipts_to_notify
from service.webhooks.events import event_payload


def record_events(conn: Connection, event: str, receipt_ids: Sequence[str], *, now: datetime,
                  new_tsas: Collection[str] = ()) -> int:
    """Write `event` for these receipts to their callback_url and subscribed endpoints, due
    now; returns how many deliveries. `new_tsas`: the TSAs a receipt.token_added is about."""
    receipts = receipts_to_notify(conn, event, receipt_ids)
    payloads = [(r, event_payload(event, r, now=now, new_tsas=new_tsas)) for r in receipts]
    return insert_deliveries(conn, event, payloads, now=now)
