"""Webhook storage: callback secrets, endpoints, and the delivery outbox and log.

Outbox: `receipts_to_notify` reads what an event needs (the receipt, its batch's tokens, where
to send it) and `insert_deliveries` writes the payloads built from it (service.webhooks.events),
one `webhook_deliveries` row per receipt and target, in the caller's transaction — the one that
marks receipts stamped or failed or adds a token — so an event exists exactly when its state
change was committed. Workers poll for due rows (`claim_due_deliveries`) and send them from RQ
jobs; nothing is lost when Redis is.
Secrets are made by the caller and stored in clear because signing needs them (HMAC); they are
never logged. Which events exist and what they say is not decided here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, RowMapping, and_, select, update
from sqlalchemy.exc import IntegrityError

from service.storage.ids import new_id
from service.storage.tables import (
    callback_secrets,
    receipts,
    tokens,
    utcnow,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

ENDPOINT_PREFIX = "whe_"
DELIVERY_PREFIX = "msg_"  # delivery ids are the webhook-id header: a message, as the spec says
MAX_ENDPOINTS_PER_KEY = 20  # every state change fans out to each one: keep the fan-out small
MAX_ERROR_LENGTH = 1000  # receivers' answers and errors, as shown in the delivery log
DEFAULT_DUE_LIMIT = 100  # deliveries handed to one poll
MAX_IDS_PER_STATEMENT = 500  # as storage.sweep: far below SQLite's bound-parameter limit


@dataclass(frozen=True)
class Endpoint:
    id: str
    api_key_id: str
    url: str
    events: list[str]
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: str
    api_key_id: str
    endpoint_id: str | None
    receipt_id: str | None
    event: str
    url: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


# --- secrets and endpoints -------------------------------------------------------------------

def callback_secret(conn: Connection, api_key_id: str, *, secret_if_missing: str,
                    now: datetime | None = None) -> str:
    """The key's secret for signing callbacks to receipts' callback_url; on first use it is
    `secret_if_missing` (the caller makes one, so storage needs no key generator)."""
    found = conn.execute(select(callback_secrets.c.secret).where(
        callback_secrets.c.api_key_id == api_key_id)).scalar()
    if found is not None:
        return str(found)
    try:
        with conn.begin_nested():
            conn.execute(callback_secrets.insert().values(
                api_key_id=api_key_id, secret=secret_if_missing, created_at=now or utcnow()))
    except IntegrityError:  # a concurrent first use won; its secret stands
        return str(conn.execute(select(callback_secrets.c.secret).where(
            callback_secrets.c.api_key_id == api_key_id)).scalar_one())
    return secret_if_missing


def rotate_callback_secret(conn: Connection, api_key_id: str, *, secret: str,
                           now: datetime | None = None) -> str:
    """Replace the key's callback secret with `secret`; returns it."""
    callback_secret(conn, api_key_id, secret_if_missing=secret, now=now)
    conn.execute(update(callback_secrets).where(callback_secrets.c.api_key_id == api_key_id)
                 .values(secret=secret, created_at=now or utcnow()))
    return secret


def _endpoint(row: RowMapping) -> Endpoint:
    return Endpoint(row["id"], row["api_key_id"], row["url"], json.loads(row["events"]),
                    row["created_at"])


def create_endpoint(conn: Connection, api_key_id: str, url: str, events: Sequence[str], *,
                    secret: str, now: datetime | None = None) -> tuple[Endpoint, str]:
    """Register an endpoint for `events` (checked by the caller) signed with `secret`; returns
    it with the secret (shown once to the client)."""
    if not events:
        raise ValueError("an endpoint needs at least one event")
    endpoint = Endpoint(new_id(ENDPOINT_PREFIX), api_key_id, url, sorted(set(events)),
                        now or utcnow())
    conn.execute(webhook_endpoints.insert().values(
        id=endpoint.id, api_key_id=api_key_id, url=url, events=json.dumps(endpoint.events),
        secret=secret, created_at=endpoint.created_at))
    return endpoint, secret


def list_endpoints(conn: Connection, api_key_id: str) -> list[Endpoint]:
    """The key's active endpoints, oldest first (never their secrets)."""
    rows = conn.execute(select(webhook_endpoints).where(
        webhook_endpoints.c.api_key_id == api_key_id, webhook_endpoints.c.deleted_at.is_(None)
    ).order_by(webhook_endpoints.c.id)).mappings()
    return [_endpoint(r) for r in rows]


def _own_endpoint(api_key_id: str, endpoint_id: str) -> Any:
    return and_(webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.api_key_id == api_key_id,
                webhook_endpoints.c.deleted_at.is_(None))


def rotate_endpoint_secret(conn: Connection, api_key_id: str, endpoint_id: str, *,
                           secret: str) -> str | None:
    """Give the key's endpoint `secret`; returns it (None: no such endpoint for this key)."""
    result = conn.execute(update(webhook_endpoints)
                          .where(_own_endpoint(api_key_id, endpoint_id)).values(secret=secret))
    return secret if result.rowcount else None


def delete_endpoint(conn: Connection, api_key_id: str, endpoint_id: str,
                    now: datetime | None = None) -> bool:
    """Stop sending to the endpoint (its log stays); False when the key has no such endpoint."""
    result = conn.execute(update(webhook_endpoints).where(_own_endpoint(api_key_id, endpoint_id))
                          .values(deleted_at=now or utcnow()))
    return bool(result.rowcount)


# --- the outbox ------------------------------------------------------------------------------

class Destination(NamedTuple):
    """Where an event goes: a registered endpoint, or (endpoint_id None) a callback_url."""

    endpoint_id: str | None
    url: str


@dataclass(frozen=True)
class EventToken:
    tsa: str
    gen_time: datetime
    serial: str


@dataclass(frozen=True)
class EventReceipt:
    """A receipt an event is about: what its payload shows, and where it is sent."""

    id: str
    api_key_id: str
    status: str
    manifest_digest: str
    external_id: str | None
    failure: str | None
    stamped_at: datetime | None
    tokens: tuple[EventToken, ...]  # its batch's, by TSA name
    destinations: tuple[Destination, ...]  # callback_url first, then endpoints


def receipts_to_notify(conn: Connection, event: str, receipt_ids: Sequence[str]
                       ) -> list[EventReceipt]:
    """The receipts among `receipt_ids` with somewhere to send `event`: their callback_url, and
    their key's live endpoints subscribed to it. Read in the transaction that changed them."""
    ids = list(receipt_ids)
    if len(ids) > MAX_IDS_PER_STATEMENT:
        return [r for i in range(0, len(ids), MAX_IDS_PER_STATEMENT)
                for r in receipts_to_notify(conn, event, ids[i:i + MAX_IDS_PER_STATEMENT])]
    if not ids:
        return []
    rows = conn.execute(select(receipts.c.id, receipts.c.api_key_id, receipts.c.status,
                               receipts.c.manifest_digest, receipts.c.external_id,
                               receipts.c.callback_url, receipts.c.failure, receipts.c.batch_id,
                               receipts.c.stamped_at)
                        .where(receipts.c.id.in_(ids))).mappings().all()
    keys = {r["api_key_id"] for r in rows}
    endpoints: dict[str, list[Destination]] = {}
    for ep in conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.api_key_id,
                                  webhook_endpoints.c.url, webhook_endpoints.c.events)
                           .where(webhook_endpoints.c.api_key_id.in_(keys),
                                  webhook_endpoints.c.deleted_at.is_(None))).mappings():
        if event in json.loads(ep["events"]):
            endpoints.setdefault(ep["api_key_id"], []).append(Destination(ep["id"], ep["url"]))
    targets = [r for r in rows if r["callback_url"] or endpoints.get(r["api_key_id"])]
    batch_ids = {r["batch_id"] for r in targets if r["batch_id"]}
    by_batch: dict[str, list[EventToken]] = {}
    if batch_ids:
        for t in conn.execute(select(tokens.c.batch_id, tokens.c.tsa, tokens.c.gen_time,
                                     tokens.c.serial).where(tokens.c.batch_id.in_(batch_ids))
                              .order_by(tokens.c.tsa)).mappings():
            by_batch.setdefault(t["batch_id"], []).append(
                EventToken(t["tsa"], t["gen_time"], t["serial"]))
    return [EventReceipt(
        r["id"], r["api_key_id"], r["status"], r["manifest_digest"], r["external_id"],
        r["failure"], r["stamped_at"], tuple(by_batch.get(r["batch_id"], ())),
        tuple(([Destination(None, r["callback_url"])] if r["callback_url"] else [])
              + endpoints.get(r["api_key_id"], [])),
    ) for r in targets]


def insert_deliveries(conn: Connection, event: str,
                      payloads: Sequence[tuple[EventReceipt, str]], *,
                      now: datetime | None = None) -> int:
    """Write each (receipt, payload) as one pending delivery per destination, due now; returns
    how many. Call it in the state change's transaction: that is what makes this an outbox."""
    now = now or utcnow()
    values = [{
        "id": new_id(DELIVERY_PREFIX), "api_key_id": receipt.api_key_id,
        "endpoint_id": dest.endpoint_id, "receipt_id": receipt.id, "event": event,
        "url": dest.url, "payload": payload, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now, "updated_at": now,
    } for receipt, payload in payloads for dest in receipt.destinations]
    if values:
        conn.execute(webhook_deliveries.insert(), values)
    return len(values)


def _delivery(row: RowMapping) -> Delivery:
    return Delivery(**{f: row[f] for f in Delivery.__dataclass_fields__})


def deliveries_due(conn: Connection, now: datetime | None = None) -> bool:
    """Whether any delivery is due: a read, so idle polls take no write lock (SQLite)."""
    return conn.execute(select(webhook_deliveries.c.id).where(
        webhook_deliveries.c.status == "pending",
        webhook_deliveries.c.next_attempt_at <= (now or utcnow())).limit(1)).first() is not None


def claim_due_deliveries(conn: Connection, lease_s: float, now: datetime | None = None,
                         limit: int = DEFAULT_DUE_LIMIT) -> list[str]:
    """Ids of pending deliveries due now, pushed `lease_s` ahead so the next poll skips them
    while their job runs (if the job is lost, they are due again after the lease)."""
    now = now or utcnow()
    ids = list(conn.execute(select(webhook_deliveries.c.id).where(
        webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_at <= now
    ).order_by(webhook_deliveries.c.next_attempt_at).limit(limit)).scalars())
    if ids:
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids))
                     .values(next_attempt_at=now + timedelta(seconds=lease_s)))
    return ids


def delivery_for_attempt(conn: Connection, delivery_id: str, *, secret_if_missing: str
                         ) -> tuple[Delivery, str | None]:
    """A delivery and the secret to sign it with (None when its endpoint was deleted); a
    callback to a key without a callback secret yet gets `secret_if_missing`, kept."""
    row = conn.execute(select(webhook_deliveries).where(
        webhook_deliveries.c.id == delivery_id)).mappings().one()
    delivery = _delivery(row)
    if delivery.endpoint_id is None:
        return delivery, callback_secret(conn, delivery.api_key_id,
                                         secret_if_missing=secret_if_missing)
    secret = conn.execute(select(webhook_endpoints.c.secret).where(
        webhook_endpoints.c.id == delivery.endpoint_id,
        webhook_endpoints.c.deleted_at.is_(None))).scalar()
    return delivery, secret


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None


def record_attempt(conn: Connection, delivery_id: str, *, succeeded: bool,
                   status_code: int | None, error: str | None,
                   next_attempt_at: datetime | None, started_at: datetime | None = None,
                   now: datetime | None = None) -> str:
    """Count one attempt: succeeded, due again at `next_attempt_at`, or (None) failed for good.
    The attempt is also added to the delivery's history."""
    now = now or utcnow()
    started_at = started_at or now
    status = "succeeded" if succeeded else ("pending" if next_attempt_at else "failed")
    attempts = conn.execute(select(webhook_deliveries.c.attempts).where(
        webhook_deliveries.c.id == delivery_id)).scalar_one()
    conn.execute(webhook_attempts.insert().values(
        delivery_id=delivery_id, attempt=attempts + 1, started_at=started_at,
        duration_ms=max(0, int((now - started_at).total_seconds() * 1000)),
        status_code=status_code, error=error[:MAX_ERROR_LENGTH] if error else None))
    conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
        status=status, attempts=webhook_deliveries.c.attempts + 1,
        next_attempt_at=None if succeeded else next_attempt_at, last_status_code=status_code,
        last_error=error[:MAX_ERROR_LENGTH] if error else None, updated_at=now,
        delivered_at=now if succeeded else None))
    return status


def get_delivery(conn: Connection, api_key_id: str, delivery_id: str
                 ) -> tuple[Delivery, list[Attempt]] | None:
    """One of the key's deliveries with its attempts, oldest first; None if not the key's."""
    row = conn.execute(select(webhook_deliveries).where(
        webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.api_key_id == api_key_id
    )).mappings().first()
    if row is None:
        return None
    attempts = conn.execute(select(
        webhook_attempts.c.attempt, webhook_attempts.c.started_at, webhook_attempts.c.duration_ms,
        webhook_attempts.c.status_code, webhook_attempts.c.error,
    ).where(webhook_attempts.c.delivery_id == delivery_id).order_by(webhook_attempts.c.id)
    ).mappings()
    return _delivery(row), [Attempt(**a) for a in attempts]


def list_deliveries(conn: Connection, api_key_id: str, *, endpoint_id: str | None = None,
                    status: str | None = None, limit: int = 50) -> list[Delivery]:
    """The key's deliveries, newest first (the delivery log)."""
    query = select(webhook_deliveries).where(webhook_deliveries.c.api_key_id == api_key_id)
    if endpoint_id is not None:
        query = query.where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    rows = conn.execute(query.order_by(webhook_deliveries.c.id.desc()).limit(limit)).mappings()
    return [_delivery(r) for r in rows]


def redeliver(conn: Connection, api_key_id: str, delivery_id: str,
              now: datetime | None = None) -> Delivery | None:
    """Send a delivery again from the start of the schedule, same id and body; None if unknown."""
    now = now or utcnow()
    result = conn.execute(update(webhook_deliveries).where(
        webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.api_key_id == api_key_id,
    ).values(status="pending", attempts=0, next_attempt_at=now, updated_at=now))
    if not result.rowcount:
        return None
    return _delivery(conn.execute(select(webhook_deliveries).where(
        webhook_deliveries.c.id == delivery_id)).mappings().one())
