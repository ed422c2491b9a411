"""Webhook storage: callback secrets, endpoints, and the delivery outbox and log.

Outbox: `record_receipt_events` writes one `webhook_deliveries` row per receipt and target in
the caller's transaction — the one that marks receipts stamped or failed or adds a token — so
an event exists exactly when its state change was committed. Workers poll for due rows
(`claim_due_deliveries`) and send them from RQ jobs; nothing is lost when Redis is.
Secrets are stored in clear because signing needs them (HMAC), and never logged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, select, update
from sqlalchemy.exc import IntegrityError

from service.evidence.manifest import format_timestamp
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
from service.webhooks.signing import new_secret

ENDPOINT_PREFIX = "whe_"
DELIVERY_PREFIX = "msg_"  # delivery ids are the webhook-id header: a message, as the spec says
EVENTS = ("receipt.stamped", "receipt.failed", "receipt.token_added")
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

def callback_secret(conn: Connection, api_key_id: str, now: datetime | None = None) -> str:
    """The key's secret for signing callbacks to receipts' callback_url; made on first use."""
    found = conn.execute(select(callback_secrets.c.secret).where(
        callback_secrets.c.api_key_id == api_key_id)).scalar()
    if found is not None:
        return str(found)
    secret = new_secret()
    try:
        with conn.begin_nested():
            conn.execute(callback_secrets.insert().values(
                api_key_id=api_key_id, secret=secret, created_at=now or utcnow()))
    except IntegrityError:  # a concurrent first use won; its secret stands
        return str(conn.execute(select(callback_secrets.c.secret).where(
            callback_secrets.c.api_key_id == api_key_id)).scalar_one())
    return secret


def rotate_callback_secret(conn: Connection, api_key_id: str, now: datetime | None = None) -> str:
    """Replace the key's callback secret; returns the new one."""
    callback_secret(conn, api_key_id, now)
    secret = new_secret()
    conn.execute(update(callback_secrets).where(callback_secrets.c.api_key_id == api_key_id)
                 .values(secret=secret, created_at=now or utcnow()))
    return secret


def _endpoint(row: RowMapping) -> Endpoint:
    return Endpoint(row["id"], row["api_key_id"], row["url"], json.loads(row["events"]),
                    row["created_at"])


def create_endpoint(conn: Connection, api_key_id: str, url: str, events: Sequence[str],
                    now: datetime | None = None) -> tuple[Endpoint, str]:
    """Register an endpoint; returns it with its secret (shown once to the client)."""
    unknown = set(events) - set(EVENTS)
    if unknown or not events:
        raise ValueError(f"events must be a non-empty subset of {', '.join(EVENTS)}")
    endpoint = Endpoint(new_id(ENDPOINT_PREFIX), api_key_id, url, sorted(set(events)),
                        now or utcnow())
    secret = new_secret()
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


def rotate_endpoint_secret(conn: Connection, api_key_id: str, endpoint_id: str) -> str | None:
    """A new secret for the key's endpoint (None: no such endpoint for this key)."""
    secret = new_secret()
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

def _links(receipt_id: str) -> dict[str, str]:
    base = f"/v1/stamps/{receipt_id}"  # as the API's own links: path-absolute
    return {"self": base, "tokens": f"{base}/tokens", "bundle": f"{base}/bundle"}


def _token_json(row: RowMapping, receipt_id: str) -> dict[str, Any]:
    return {"tsa": row["tsa"], "gen_time": format_timestamp(row["gen_time"]),
            "serial": row["serial"], "link": f"/v1/stamps/{receipt_id}/tokens/{row['tsa']}.tsr"}


def _event_data(event: str, receipt: RowMapping, batch_tokens: list[RowMapping],
                new_tsas: Sequence[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"id": receipt["id"], "status": receipt["status"],
                            "manifest_digest": receipt["manifest_digest"],
                            "external_id": receipt["external_id"]}
    if event == "receipt.failed":
        data["reason"] = receipt["failure"]
        return data
    data["stamped_at"] = format_timestamp(receipt["stamped_at"])
    data["links"] = _links(receipt["id"])
    shown = [t for t in batch_tokens if event == "receipt.stamped" or t["tsa"] in new_tsas]
    data["tokens"] = [_token_json(t, receipt["id"]) for t in shown]
    return data


def record_receipt_events(conn: Connection, event: str, receipt_ids: Sequence[str], *,
                          new_tsas: Sequence[str] = (), now: datetime | None = None) -> int:
    """Write the deliveries for `event` on these receipts (callback_url and subscribed
    endpoints), due now; returns how many. Call it in the state change's transaction."""
    now = now or utcnow()
    ids = list(receipt_ids)
    if len(ids) > MAX_IDS_PER_STATEMENT:
        return sum(record_receipt_events(conn, event, ids[i:i + MAX_IDS_PER_STATEMENT],
                                         new_tsas=new_tsas, now=now)
                   for i in range(0, len(ids), MAX_IDS_PER_STATEMENT))
    if not ids:
        return 0
    rows = conn.execute(select(receipts.c.id, receipts.c.api_key_id, receipts.c.status,
                               receipts.c.manifest_digest, receipts.c.external_id,
                               receipts.c.callback_url, receipts.c.failure, receipts.c.batch_id,
                               receipts.c.stamped_at)
                        .where(receipts.c.id.in_(ids))).mappings().all()
    keys = {r["api_key_id"] for r in rows}
    endpoints: dict[str, list[RowMapping]] = {}
    for ep in conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.api_key_id,
                                  webhook_endpoints.c.url, webhook_endpoints.c.events)
                           .where(webhook_endpoints.c.api_key_id.in_(keys),
                                  webhook_endpoints.c.deleted_at.is_(None))).mappings():
        if event in json.loads(ep["events"]):
            endpoints.setdefault(ep["api_key_id"], []).append(ep)
    targets = [r for r in rows if r["callback_url"] or endpoints.get(r["api_key_id"])]
    if not targets:
        return 0
    batch_ids = {r["batch_id"] for r in targets if r["batch_id"]}
    by_batch: dict[str, list[RowMapping]] = {}
    if event != "receipt.failed" and batch_ids:
        for t in conn.execute(select(tokens.c.batch_id, tokens.c.tsa, tokens.c.gen_time,
                                     tokens.c.serial).where(tokens.c.batch_id.in_(batch_ids))
                              .order_by(tokens.c.tsa)).mappings():
            by_batch.setdefault(t["batch_id"], []).append(t)
    values = []
    for receipt in targets:
        data = _event_data(event, receipt, by_batch.get(receipt["batch_id"], []), new_tsas)
        payload = json.dumps({"type": event, "timestamp": format_timestamp(now), "data": data},
                             separators=(",", ":"), sort_keys=True)
        dests = [(None, receipt["callback_url"])] if receipt["callback_url"] else []
        dests += [(ep["id"], ep["url"]) for ep in endpoints.get(receipt["api_key_id"], [])]
        for endpoint_id, url in dests:
            values.append({
                "id": new_id(DELIVERY_PREFIX), "api_key_id": receipt["api_key_id"],
                "endpoint_id": endpoint_id, "receipt_id": receipt["id"], "event": event,
                "url": url, "payload": payload, "status": "pending", "attempts": 0,
                "next_attempt_at": now, "created_at": now, "updated_at": now,
            })
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


def delivery_for_attempt(conn: Connection, delivery_id: str) -> tuple[Delivery, str | None]:
    """A delivery and the secret to sign it with (None when its endpoint was deleted)."""
    row = conn.execute(select(webhook_deliveries).where(
        webhook_deliveries.c.id == delivery_id)).mappings().one()
    delivery = _delivery(row)
    if delivery.endpoint_id is None:
        return delivery, callback_secret(conn, delivery.api_key_id)
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
