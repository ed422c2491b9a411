"""Inbound hooks: integrations (a posting tool's secret per API key) and the messages they sent.

A message is stored once per (integration, webhook-id) with the receipt id reserved for it, so
a repeated webhook-id answers the same receipt; its body (the image) is dropped once processed.
Secrets are stored in clear because verifying signatures needs them (HMAC), and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, or_, select, update
from sqlalchemy.exc import IntegrityError

from service.storage.ids import new_id
from service.storage.tables import api_keys, inbound_messages, integrations, utcnow

INTEGRATION_PREFIX = "itg_"
INBOUND_PREFIX = "inb_"
MAX_ERROR_LENGTH = 1000  # why a message failed, as stored
DEFAULT_DUE_LIMIT = 100  # messages handed to one poll


@dataclass(frozen=True)
class Integration:
    id: str
    api_key_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class InboundMessage:
    id: str
    integration_id: str
    message_id: str
    receipt_id: str
    body: bytes | None
    status: str
    error: str | None
    attempts: int = 0


def create_integration(conn: Connection, api_key_id: str, name: str, *, secret: str,
                       now: datetime | None = None) -> tuple[Integration, str]:
    """A posting tool's inbound hook for this key, verified with `secret` (made by the caller);
    returns it with the secret (shown once)."""
    integration = Integration(new_id(INTEGRATION_PREFIX), api_key_id, name, now or utcnow())
    conn.execute(integrations.insert().values(
        id=integration.id, api_key_id=api_key_id, name=name, secret=secret,
        created_at=integration.created_at))
    return integration, secret


def rotate_integration_secret(conn: Connection, api_key_id: str, integration_id: str, *,
                              secret: str) -> str | None:
    """Give the key's integration `secret`; returns it (None: no such integration for this key)."""
    result = conn.execute(update(integrations).where(
        integrations.c.id == integration_id, integrations.c.api_key_id == api_key_id
    ).values(secret=secret))
    return secret if result.rowcount else None


def list_integrations(conn: Connection, api_key_id: str | None = None) -> list[Integration]:
    query = select(integrations.c.id, integrations.c.api_key_id, integrations.c.name,
                   integrations.c.created_at).order_by(integrations.c.id)
    if api_key_id is not None:
        query = query.where(integrations.c.api_key_id == api_key_id)
    return [Integration(**r) for r in conn.execute(query).mappings()]


def integration_secret(conn: Connection, integration_id: str) -> tuple[Integration, str] | None:
    """The integration and its secret, to verify an inbound message; None when unknown or when
    its API key is revoked (revoking a key stops its integrations too)."""
    row = conn.execute(select(integrations).join(
        api_keys, api_keys.c.id == integrations.c.api_key_id).where(
        integrations.c.id == integration_id, api_keys.c.revoked_at.is_(None))).mappings().first()
    if row is None:
        return None
    return Integration(row["id"], row["api_key_id"], row["name"], row["created_at"]), row["secret"]


def _inbound(row: RowMapping) -> InboundMessage:
    body = row["body"]
    return InboundMessage(row["id"], row["integration_id"], row["message_id"], row["receipt_id"],
                          bytes(body) if body is not None else None, row["status"], row["error"],
                          row["attempts"])


def find_inbound(conn: Connection, integration_id: str, message_id: str) -> InboundMessage | None:
    row = conn.execute(select(inbound_messages).where(
        inbound_messages.c.integration_id == integration_id,
        inbound_messages.c.message_id == message_id)).mappings().first()
    return _inbound(row) if row else None


def accept_inbound(conn: Connection, integration_id: str, message_id: str, body: bytes,
                   receipt_id: str, lease_s: float,
                   now: datetime | None = None) -> tuple[InboundMessage, bool]:
    """Store a verified message once per (integration, webhook-id); True when it is new.

    A repeat returns the first message (and so its receipt id), never a second one.
    """
    now = now or utcnow()
    existing = find_inbound(conn, integration_id, message_id)
    if existing is not None:
        return existing, False
    message = InboundMessage(new_id(INBOUND_PREFIX), integration_id, message_id, receipt_id,
                             body, "accepted", None)
    try:
        with conn.begin_nested():
            conn.execute(inbound_messages.insert().values(
                id=message.id, integration_id=integration_id, message_id=message_id,
                receipt_id=receipt_id, body=body, status="accepted", created_at=now,
                next_attempt_at=now + timedelta(seconds=lease_s)))
    except IntegrityError:
        found = find_inbound(conn, integration_id, message_id)
        assert found is not None
        return found, False
    return message, True


def get_inbound(conn: Connection, inbound_id: str) -> InboundMessage | None:
    row = conn.execute(select(inbound_messages).where(inbound_messages.c.id == inbound_id)
                       ).mappings().first()
    return _inbound(row) if row else None


def inbound_due(conn: Connection, now: datetime | None = None) -> bool:
    """Whether any accepted message waits for its job (a read: idle polls take no lock)."""
    due = or_(inbound_messages.c.next_attempt_at.is_(None),
              inbound_messages.c.next_attempt_at <= (now or utcnow()))
    return conn.execute(select(inbound_messages.c.id).where(
        inbound_messages.c.status == "accepted", due).limit(1)).first() is not None


def claim_due_inbound(conn: Connection, lease_s: float, now: datetime | None = None,
                      limit: int = DEFAULT_DUE_LIMIT) -> list[str]:
    """Accepted messages whose job is overdue (lost with Redis, or its worker died)."""
    now = now or utcnow()
    due = or_(inbound_messages.c.next_attempt_at.is_(None),
              inbound_messages.c.next_attempt_at <= now)
    ids = list(conn.execute(select(inbound_messages.c.id).where(
        inbound_messages.c.status == "accepted", due).limit(limit)).scalars())
    if ids:
        conn.execute(update(inbound_messages).where(inbound_messages.c.id.in_(ids))
                     .values(next_attempt_at=now + timedelta(seconds=lease_s)))
    return ids


def retry_inbound(conn: Connection, inbound_id: str, error: str, next_attempt_at: datetime,
                  now: datetime | None = None) -> None:
    """Count a failed attempt (the image could not be fetched) and when to try again."""
    conn.execute(update(inbound_messages).where(
        inbound_messages.c.id == inbound_id, inbound_messages.c.status == "accepted").values(
        attempts=inbound_messages.c.attempts + 1, error=error[:MAX_ERROR_LENGTH],
        next_attempt_at=next_attempt_at))


def finish_inbound(conn: Connection, inbound_id: str, status: str, error: str | None = None,
                   now: datetime | None = None) -> None:
    """Mark a message done (its receipt exists) or failed; its body (the image) is dropped."""
    conn.execute(update(inbound_messages).where(inbound_messages.c.id == inbound_id).values(
        status=status, error=error[:MAX_ERROR_LENGTH] if error else None, body=None,
        attempts=inbound_messages.c.attempts + 1,
        next_attempt_at=None, processed_at=now or utcnow()))
