"""Evidence records: each token's RFC 4998 archive timestamps, stored as DER, and the tokens due.

Persists what the renewal use case decides; decides nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select

from service.storage.tables import evidence_records, tokens


@dataclass(frozen=True)
class StoredRecord:
    """A token's evidence record, with each archive timestamp's TSA and chain (PEM)."""

    batch_id: str
    tsa: str
    record_der: bytes
    renewals: list[dict[str, Any]]
    expires_at: datetime


@dataclass(frozen=True)
class RenewalCandidate:
    """A stored token and, once renewed, its record."""

    token_id: int
    batch_id: str
    tsa: str
    reply_der: bytes
    chain_pem: str | None
    record: StoredRecord | None


def _record(row: Any) -> StoredRecord:
    return StoredRecord(row.batch_id, row.tsa, bytes(row.record_der), json.loads(row.renewals),
                        row.expires_at)


def renewal_candidates(conn: Connection, *, record_expiring_before: datetime, after: tuple[str, str]
                       | None, limit: int) -> list[RenewalCandidate]:
    """Tokens in (batch_id, tsa) order after `after`: those without a record (the caller checks
    their certificates) and those whose record's last timestamp expires before the given time."""
    join = tokens.outerjoin(evidence_records, and_(
        evidence_records.c.batch_id == tokens.c.batch_id, evidence_records.c.tsa == tokens.c.tsa))
    query = (
        select(tokens.c.id, tokens.c.batch_id, tokens.c.tsa, tokens.c.reply_der, tokens.c.chain_pem,
               evidence_records.c.record_der, evidence_records.c.renewals,
               evidence_records.c.expires_at)
        .select_from(join)
        .where((evidence_records.c.batch_id.is_(None))
               | (evidence_records.c.expires_at < record_expiring_before))
        .order_by(tokens.c.batch_id, tokens.c.tsa)
        .limit(limit)
    )
    if after is not None:
        query = query.where((tokens.c.batch_id > after[0])
                            | ((tokens.c.batch_id == after[0]) & (tokens.c.tsa > after[1])))
    out = []
    for row in conn.execute(query):
        record = _record(row) if row.record_der is not None else None
        out.append(RenewalCandidate(row.id, row.batch_id, row.tsa, bytes(row.reply_der),
                                    row.chain_pem, record))
    return out


def store_records(conn: Connection, records: Sequence[StoredRecord], now: datetime) -> None:
    """Insert or replace each token's record (a renewal appends to the chain it read)."""
    for record in records:
        conn.execute(delete(evidence_records).where(
            evidence_records.c.batch_id == record.batch_id,
            evidence_records.c.tsa == record.tsa))
        conn.execute(evidence_records.insert().values(
            batch_id=record.batch_id, tsa=record.tsa, record_der=record.record_der,
            renewals=json.dumps(record.renewals), expires_at=record.expires_at, renewed_at=now))


def records_of(conn: Connection, batch_id: str) -> dict[str, StoredRecord]:
    """The batch's evidence records by TSA name (empty when none was renewed)."""
    rows = conn.execute(select(evidence_records).where(evidence_records.c.batch_id == batch_id))
    return {row.tsa: _record(row) for row in rows}
