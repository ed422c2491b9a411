"""Receipts: idempotent registration, per-key scoping, keyset pagination, UTC round trips."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import StatementError

from service.errors import ChronosealError, MalformedInputError
from service.storage import (
    IdempotencyConflictError,
    get_receipt,
    insert_receipt,
    list_receipts,
    write_transaction,
)
from service.storage.tables import receipts

IDEMPOTENT_THREADS = 4  # enough to race the unique constraint, few enough for 2 cores


def _fields(n: int = 0) -> dict:
    manifest = b'{"n":%d,"v":1}' % n
    return {
        "image_sha256": hashlib.sha256(b"image").hexdigest(),
        "manifest_jcs": manifest,
        "manifest_digest": hashlib.sha256(manifest).hexdigest(),
    }


def test_insert_and_get(db_engine, make_api_key) -> None:
    key, _ = make_api_key()
    with write_transaction(db_engine) as conn:
        receipt = insert_receipt(
            conn, api_key_id=key.id, image_size=1234, media_type="image/png",
            external_id="post-1", callback_url="https://example.test/cb",
            warnings=["metadata: no generation record"], public=True, **_fields(),
        )
    assert receipt.id.startswith("rcp_") and len(receipt.id) == 30
    assert receipt.status == "pending" and receipt.batch_id is None and receipt.proof is None
    assert receipt.manifest_jcs == b'{"n":0,"v":1}' and receipt.public is True
    assert receipt.warnings == ["metadata: no generation record"]
    assert receipt.enqueued_at == receipt.created_at and not receipt.replayed
    with db_engine.connect() as conn:
        assert get_receipt(conn, receipt.id, key.id) == receipt


def test_get_is_scoped_to_the_key(db_engine, make_api_key, make_receipt) -> None:
    receipt = make_receipt()
    other, _ = make_api_key("other")
    with db_engine.connect() as conn:
        assert get_receipt(conn, receipt.id, other.id) is None
        assert get_receipt(conn, receipt.id, None) == receipt
        assert get_receipt(conn, "rcp_missing", receipt.api_key_id) is None


def test_idempotent_replay_and_conflict(db_engine, make_api_key) -> None:
    key, _ = make_api_key()
    other, _ = make_api_key("other")
    args = {"idempotency_key": "abc", "request_fingerprint": "f1", **_fields()}
    with write_transaction(db_engine) as conn:
        first = insert_receipt(conn, api_key_id=key.id, **args)
    with write_transaction(db_engine) as conn:
        again = insert_receipt(conn, api_key_id=key.id, **args)
    assert again.id == first.id and again.replayed
    with write_transaction(db_engine) as conn, pytest.raises(IdempotencyConflictError) as info:
        insert_receipt(conn, api_key_id=key.id, **{**args, "request_fingerprint": "f2"})
    assert info.value.receipt_id == first.id and isinstance(info.value, ChronosealError)
    with write_transaction(db_engine) as conn:  # the same key under another API key is new
        assert insert_receipt(conn, api_key_id=other.id, **args).id != first.id


def test_concurrent_idempotent_inserts_make_one_receipt(db_engine, make_api_key) -> None:
    key, _ = make_api_key()
    barrier = threading.Barrier(IDEMPOTENT_THREADS)
    ids: list[str] = []
    errors: list[BaseException] = []

    def insert() -> None:
        try:
            barrier.wait()
            with write_transaction(db_engine) as conn:
                receipt = insert_receipt(
                    conn, api_key_id=key.id, idempotency_key="race",
                    request_fingerprint="same", **_fields(),
                )
            ids.append(receipt.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=insert) for _ in range(IDEMPOTENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1 and len(ids) == IDEMPOTENT_THREADS
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(receipts)).scalar() == 1


def test_pagination_newest_first(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    made = [make_receipt(key.id) for _ in range(7)]
    make_receipt()  # another key's receipt never shows up
    seen, cursor, pages = [], None, 0
    with db_engine.connect() as conn:
        while True:
            page, cursor = list_receipts(conn, key.id, limit=3, cursor=cursor)
            seen += [r.id for r in page]
            pages += 1
            if cursor is None:
                break
    assert pages == 3
    assert seen == sorted((r.id for r in made), reverse=True)


def test_filters(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    tagged = make_receipt(key.id, external_id="post-9")
    make_receipt(key.id, external_id="post-10")
    failed = make_receipt(key.id)
    with db_engine.begin() as conn:
        conn.execute(update(receipts).where(receipts.c.id == failed.id).values(status="failed"))
    with db_engine.connect() as conn:
        by_external, cursor = list_receipts(conn, key.id, external_id="post-9")
        assert [r.id for r in by_external] == [tagged.id] and cursor is None
        by_status, _ = list_receipts(conn, key.id, status="failed")
        assert [r.id for r in by_status] == [failed.id]
        assert len(list_receipts(conn, key.id, status="pending")[0]) == 2
        assert len(list_receipts(conn, key.id, limit=0)[0]) == 1  # clamped to at least one
        with pytest.raises(MalformedInputError):
            list_receipts(conn, key.id, status="lost")


def test_timezones_round_trip_as_utc(db_engine, make_receipt) -> None:
    local = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
    receipt = make_receipt(created_at=local)
    assert receipt.created_at == local
    assert receipt.created_at.tzinfo == UTC
    assert receipt.created_at.hour == 20 and receipt.created_at.microsecond == 123456


def test_naive_datetimes_are_refused(db_engine, make_receipt) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        make_receipt(created_at=datetime(2026, 1, 1, 12, 0))
