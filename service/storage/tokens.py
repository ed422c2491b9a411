"""Tokens and per-TSA attempts: the plain operations a batch's result is stored with.

Storing root, proofs and tokens, counting tokens, marking receipts stamped and the batch
complete are separate steps here; when they happen, in one transaction, is decided by the
stamping code (usecases.stamping.results: stamped iff min_tokens verified tokens are stored).
Tokens are unique per (batch, TSA), so a worker that took over a batch can store the same TSA's
token again without harm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.storage.engine import connection_for, is_sqlite
from service.storage.errors import BatchStateError
from service.storage.tables import (
    batch_tsa_attempts,
    batches,
    receipts,
    token_revocations,
    tokens,
    utcnow,
)

MAX_ERROR_LENGTH = 2000  # error texts come from remote servers: keep rows and API answers small
DEFAULT_DUE_LIMIT = 100  # attempts handed to one scheduler pass


class RevocationRow(NamedTuple):
    """Revocation data for one certificate of a token's chain: a DER CRL, or kind 'none' and
    why (`note`)."""

    cert_sha256: str
    kind: str
    url: str | None
    der: bytes | None
    note: str | None = None


class NewToken(NamedTuple):
    """A verified token to store: `serial` is the TSTInfo serial number (up to 160 bits)."""

    tsa: str
    reply_der: bytes
    gen_time: datetime
    serial: int | str
    chain_pem: str | None = None  # the validated chain, TSA certificate first, root last
    revocation: tuple[RevocationRow, ...] = ()  # fetched for that chain when it was stored


@dataclass(frozen=True)
class Token:
    id: int
    batch_id: str
    tsa: str
    reply_der: bytes
    gen_time: datetime
    serial: str
    created_at: datetime
    chain_pem: str | None = None


@dataclass(frozen=True)
class TsaAttempt:
    batch_id: str
    tsa: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class TsaOutcome:
    """What the stamping code last recorded about one TSA: its newest token, its newest failure.

    A TSA never asked (no attempt row) has neither; one whose failure is newer than its token
    was failing when it was last asked.
    """

    tsa: str
    token_at: datetime | None
    failed_at: datetime | None
    last_error: str | None


# Attempt states that mean "this TSA failed, retry pending or given up" (not "done").
_FAILED_STATES = ("pending", "rejected")


def _insert(conn: Connection, table: Any) -> Any:
    return sqlite_insert(table) if is_sqlite(conn) else pg_insert(table)


def lock_batch(conn: Connection, batch_id: str) -> str | None:
    """Lock the batch for this transaction, so two stores for it serialise; its stored root."""
    # FOR UPDATE on PostgreSQL; SQLite's write transactions (BEGIN IMMEDIATE) already serialise.
    query = select(batches.c.root).where(batches.c.id == batch_id)
    row = conn.execute(query if is_sqlite(conn) else query.with_for_update()).first()
    if row is None:
        raise BatchStateError(f"no batch {batch_id!r}")
    root: str | None = row.root
    return root


def store_proofs(conn: Connection, batch_id: str, root_hex: str,
                 proofs: Mapping[str, Sequence[str]], head_jcs: bytes | None = None) -> None:
    """Store the batch's root, its head (when given) and every leaf's audit path (the batch
    is locked first).

    `proofs` must cover exactly the batch's receipts; storing again (after a takeover) must
    give the same root and head, or BatchStateError: the stored proofs would no longer match.
    """
    stored = lock_batch(conn, batch_id)
    if stored is not None and stored != root_hex:
        raise BatchStateError(f"batch {batch_id} has root {stored}, not {root_hex}")
    stored_head = conn.execute(select(batches.c.head_jcs).where(batches.c.id == batch_id)).scalar()
    if stored is not None and (bytes(stored_head) if stored_head is not None else None) != head_jcs:
        raise BatchStateError(f"batch {batch_id} has another batch head stored")
    members = set(
        conn.execute(select(receipts.c.id).where(receipts.c.batch_id == batch_id)).scalars()
    )
    if set(proofs) != members:
        raise BatchStateError(f"proofs do not match the receipts of batch {batch_id}")
    conn.execute(update(batches).where(batches.c.id == batch_id)
                 .values(root=root_hex, head_jcs=head_jcs))
    conn.execute(
        update(receipts)
        .where(receipts.c.id == bindparam("rid"))
        .values(proof=bindparam("path")),
        [{"rid": rid, "path": json.dumps(list(path))} for rid, path in proofs.items()],
    )


def insert_tokens(conn: Connection, batch_id: str, new: Iterable[NewToken],
                  now: datetime | None = None) -> list[str]:
    """Insert the (verified) tokens not stored yet and mark their TSAs' attempts done; returns
    the TSAs whose token is new (a repeated TSA keeps its first token)."""
    now = now or utcnow()
    inserted: list[str] = []
    for token in new:
        tsa, reply_der, gen_time, serial, chain_pem, revocation = token
        result = conn.execute(
            _insert(conn, tokens)
            .values(batch_id=batch_id, tsa=tsa, reply_der=reply_der, gen_time=gen_time,
                    serial=str(serial), created_at=now, chain_pem=chain_pem)
            .on_conflict_do_nothing(index_elements=["batch_id", "tsa"])
            .returning(tokens.c.id)  # rowcount is -1 here on psycopg; a returned row is not
        )
        row = result.first()
        if row is not None:
            inserted.append(tsa)
            store_revocation(conn, row.id, revocation, now)
        statement = _insert(conn, batch_tsa_attempts).values(
            batch_id=batch_id, tsa=tsa, state="done", attempts=1, updated_at=now
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["batch_id", "tsa"],
                set_={"state": "done", "next_attempt_at": None, "updated_at": now},
            )
        )
    return inserted


def store_revocation(conn: Connection, token_id: int, rows: Iterable[RevocationRow],
                     now: datetime | None = None) -> int:
    """Store revocation rows for a token: a certificate without a row gets it, one whose row is
    kind 'none' gets the new data (a later fetch filling a gap); stored CRLs stay. Returns how
    many rows were written."""
    now = now or utcnow()
    written = 0
    for cert_sha256, kind, url, der, note in rows:
        values = {"kind": kind, "url": url, "der": der, "note": note, "fetched_at": now}
        statement = _insert(conn, token_revocations).values(
            token_id=token_id, cert_sha256=cert_sha256, **values)
        result = conn.execute(statement.on_conflict_do_update(
            index_elements=["token_id", "cert_sha256"], set_=values,
            where=token_revocations.c.kind == "none",
        ).returning(token_revocations.c.id))
        written += result.first() is not None
    return written


def list_revocations(conn: Connection, token_ids: Iterable[int]) -> dict[int, list[RevocationRow]]:
    """The stored revocation rows of each token, by certificate digest then URL."""
    ids = list(token_ids)
    found: dict[int, list[RevocationRow]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = conn.execute(
        select(token_revocations).where(token_revocations.c.token_id.in_(ids))
        .order_by(token_revocations.c.token_id, token_revocations.c.cert_sha256)
    ).mappings()
    for row in rows:
        der = bytes(row["der"]) if row["der"] is not None else None
        found[row["token_id"]].append(
            RevocationRow(row["cert_sha256"], row["kind"], row["url"], der, row["note"]))
    return found


def tokens_missing_revocation(conn: Connection, tried_before: datetime,
                              limit: int = DEFAULT_DUE_LIMIT) -> list[Token]:
    """Tokens with a certificate stored as 'none' although it names a URL (the fetch failed),
    last tried before `tried_before`: what a later retry may fill, oldest first."""
    missing = (select(token_revocations.c.token_id)
               .where(token_revocations.c.kind == "none", token_revocations.c.url.is_not(None),
                      token_revocations.c.fetched_at < tried_before)
               .distinct())
    rows = conn.execute(
        select(tokens).where(tokens.c.id.in_(missing)).order_by(tokens.c.id).limit(limit)
    ).mappings()
    return [Token(**{**row, "reply_der": bytes(row["reply_der"])}) for row in rows]


def count_tokens(conn: Connection, batch_id: str) -> int:
    """How many tokens the batch holds."""
    return int(conn.execute(
        select(func.count()).select_from(tokens).where(tokens.c.batch_id == batch_id)
    ).scalar_one())


def mark_receipts_stamped(conn: Connection, batch_id: str, now: datetime | None = None
                          ) -> list[str]:
    """Mark the batch's pending receipts stamped at `now`; returns their ids, sorted."""
    return sorted(conn.execute(
        update(receipts)
        .where(receipts.c.batch_id == batch_id, receipts.c.status == "pending")
        .values(status="stamped", stamped_at=now or utcnow(), last_error=None)
        .returning(receipts.c.id)
    ).scalars())


def stamped_receipt_ids(conn: Connection, batch_id: str) -> list[str]:
    """The batch's stamped receipts, sorted."""
    return sorted(conn.execute(select(receipts.c.id).where(
        receipts.c.batch_id == batch_id, receipts.c.status == "stamped")).scalars())


def complete_batch(conn: Connection, batch_id: str, now: datetime | None = None) -> None:
    """Close an open batch (its lease is no longer needed); a complete batch stays as it is."""
    conn.execute(
        update(batches)
        .where(batches.c.id == batch_id, batches.c.status == "open")
        .values(status="complete", completed_at=now or utcnow(), lease_until=None)
    )


def record_batch_error(
    bind: Engine | Connection,
    batch_id: str,
    tsa: str,
    error: str,
    next_attempt_at: datetime | None,
    rejected: bool,
    now: datetime | None = None,
) -> None:
    """Count a failed TSA attempt and when to retry; show the reason on pending receipts.

    `rejected` marks a TSA that refused the request outright: it is not retried. An attempt
    already `done` (its token is stored) stays done.
    """
    now = now or utcnow()
    error = error[:MAX_ERROR_LENGTH]
    state = "rejected" if rejected else "pending"
    with connection_for(bind) as conn:
        statement = _insert(conn, batch_tsa_attempts).values(
            batch_id=batch_id, tsa=tsa, state=state, attempts=1,
            next_attempt_at=next_attempt_at, last_error=error, updated_at=now,
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["batch_id", "tsa"],
                set_={
                    "state": state,
                    "attempts": batch_tsa_attempts.c.attempts + 1,
                    "next_attempt_at": next_attempt_at,
                    "last_error": error,
                    "updated_at": now,
                },
                where=batch_tsa_attempts.c.state != "done",
            )
        )
        conn.execute(
            update(receipts)
            .where(receipts.c.batch_id == batch_id, receipts.c.status == "pending")
            .values(last_error=f"{tsa}: {error}"[:MAX_ERROR_LENGTH])
        )


def list_tokens(conn: Connection, batch_id: str) -> list[Token]:
    """The batch's tokens, by TSA name."""
    rows = conn.execute(
        select(tokens).where(tokens.c.batch_id == batch_id).order_by(tokens.c.tsa)
    ).mappings()
    return [Token(**{**row, "reply_der": bytes(row["reply_der"])}) for row in rows]


def list_due_attempts(
    conn: Connection, now: datetime | None = None, limit: int = DEFAULT_DUE_LIMIT
) -> list[TsaAttempt]:
    """Pending TSA attempts whose backoff has passed, soonest first."""
    now = now or utcnow()
    rows = conn.execute(
        select(batch_tsa_attempts)
        .where(batch_tsa_attempts.c.state == "pending", batch_tsa_attempts.c.next_attempt_at <= now)
        .order_by(batch_tsa_attempts.c.next_attempt_at)
        .limit(limit)
    ).mappings()
    return [
        TsaAttempt(r["batch_id"], r["tsa"], r["state"], r["attempts"], r["next_attempt_at"],
                   r["last_error"])
        for r in rows
    ]


def tsa_outcomes(conn: Connection, names: Iterable[str]) -> list[TsaOutcome]:
    """Each named TSA's newest token time and newest failure, from batch_tsa_attempts.

    A stored token marks its attempt `done` at the token's time (insert_tokens), so the
    attempts table alone holds both outcomes; each lookup is one seek on the
    (tsa, state, updated_at) index, not a scan of the tokens table, so /readyz stays cheap.
    """
    outcomes = []
    for name in names:
        newest = {
            state: conn.execute(
                select(batch_tsa_attempts.c.updated_at, batch_tsa_attempts.c.last_error)
                .where(batch_tsa_attempts.c.tsa == name, batch_tsa_attempts.c.state == state)
                .order_by(batch_tsa_attempts.c.updated_at.desc())
                .limit(1)
            ).first()
            for state in ("done", *_FAILED_STATES)
        }
        done = newest["done"]
        failures = [row for state in _FAILED_STATES if (row := newest[state]) is not None]
        failed = max(failures, key=lambda row: row.updated_at, default=None)
        outcomes.append(TsaOutcome(
            name, done.updated_at if done is not None else None,
            failed.updated_at if failed is not None else None,
            failed.last_error if failed is not None else None,
        ))
    return outcomes
