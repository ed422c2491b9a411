"""Batches: atomic claims under concurrency, lease takeover, and the stamping rule."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from service.storage import (
    BatchStateError,
    NewToken,
    claim_batch,
    claim_expired_batch,
    get_batch,
    get_receipt,
    list_due_attempts,
    list_tokens,
    make_engine,
    record_batch_error,
    renew_lease,
)
from service.storage.tables import batch_tsa_attempts, receipts
from service.usecases.stamping.results import add_token, store_batch_result

CLAIMERS = 3  # processes claiming at once, as several workers do
CLAIM_RECEIPTS = 60
CLAIM_SIZE = 7  # not a divisor of CLAIM_RECEIPTS, so the last batch is short
LEASE_S = 30
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ROOT = "ab" * 32
SERIAL_160 = 2**160 - 1  # the largest serial RFC 3161 allows


def _token(tsa: str, gen_time: datetime = T0) -> NewToken:
    return NewToken(tsa, b"\x30\x03\x02\x01\x00" + tsa.encode(), gen_time, SERIAL_160)


def _proofs(batch) -> dict[str, list[str]]:
    return {leaf.receipt_id: ["cd" * 32] * leaf.index for leaf in batch.leaves}


def test_claim_takes_oldest_in_id_order(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    made = [make_receipt(key.id) for _ in range(5)]
    batch = claim_batch(db_engine, 3, "w1", LEASE_S, now=T0)
    assert batch is not None and batch.id.startswith("bat_")
    assert [leaf.receipt_id for leaf in batch.leaves] == [r.id for r in made[:3]]
    assert [leaf.index for leaf in batch.leaves] == [0, 1, 2]
    assert batch.manifest_digests == [r.manifest_digest for r in made[:3]]
    assert batch.tree_size == 3 and batch.status == "open" and batch.root is None
    assert batch.lease_owner == "w1" and batch.lease_until == T0 + timedelta(seconds=LEASE_S)
    rest = claim_batch(db_engine, 10, "w1", LEASE_S)
    assert [leaf.receipt_id for leaf in rest.leaves] == [r.id for r in made[3:]]
    assert claim_batch(db_engine, 10, "w1", LEASE_S) is None


def _claim_until_empty(url: str, owner: str, barrier, results) -> None:
    engine = make_engine(url)
    claimed: list[tuple[str, list[str]]] = []
    barrier.wait()
    while (batch := claim_batch(engine, CLAIM_SIZE, owner, LEASE_S)) is not None:
        claimed.append((batch.id, [leaf.receipt_id for leaf in batch.leaves]))
    engine.dispose()
    results.put(claimed)


def _check_claims(db_engine, claims: list[tuple[str, list[str]]], all_ids: set[str]) -> None:
    claimed_ids = [rid for _, ids in claims for rid in ids]
    assert len(claimed_ids) == len(set(claimed_ids)), "a receipt was claimed twice"
    assert set(claimed_ids) == all_ids, "a receipt was left out"
    with db_engine.connect() as conn:
        rows = conn.execute(select(receipts.c.id, receipts.c.batch_id, receipts.c.leaf_index))
        placed = {rid: (batch_id, index) for rid, batch_id, index in rows}
    for batch_id, ids in claims:
        assert [placed[rid] for rid in ids] == [(batch_id, i) for i in range(len(ids))]


def test_concurrent_claims_from_processes(db_engine, db_url, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    all_ids = {make_receipt(key.id).id for _ in range(CLAIM_RECEIPTS)}
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(CLAIMERS), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_until_empty, args=(db_url, f"p{i}", barrier, results))
        for i in range(CLAIMERS)
    ]
    for proc in procs:
        proc.start()
    claims = [claim for _ in procs for claim in results.get(timeout=120)]
    for proc in procs:
        proc.join(timeout=30)
    assert [proc.exitcode for proc in procs] == [0] * CLAIMERS
    _check_claims(db_engine, claims, all_ids)


def test_concurrent_claims_from_threads(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    all_ids = {make_receipt(key.id).id for _ in range(30)}
    barrier, claims, errors = threading.Barrier(CLAIMERS), [], []

    def claim(owner: str) -> None:
        try:
            barrier.wait()
            while (batch := claim_batch(db_engine, 4, owner, LEASE_S)) is not None:
                claims.append((batch.id, [leaf.receipt_id for leaf in batch.leaves]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    _check_claims(db_engine, claims, all_ids)


def test_expired_lease_is_taken_over(db_engine, make_receipt) -> None:
    receipt = make_receipt()
    batch = claim_batch(db_engine, 10, "dead-worker", LEASE_S, now=T0)
    assert claim_expired_batch(db_engine, "w2", LEASE_S, now=T0 + timedelta(seconds=10)) is None
    later = T0 + timedelta(seconds=LEASE_S + 1)
    taken = claim_expired_batch(db_engine, "w2", LEASE_S, now=later)
    assert taken is not None and taken.id == batch.id and taken.leaves == batch.leaves
    assert taken.lease_owner == "w2" and taken.lease_until == later + timedelta(seconds=LEASE_S)
    assert claim_expired_batch(db_engine, "w3", LEASE_S, now=later) is None
    assert not renew_lease(db_engine, batch.id, "dead-worker", LEASE_S)
    assert renew_lease(db_engine, batch.id, "w2", LEASE_S)
    # Both the dead worker (woken up) and the new owner store the same root: idempotent.
    proofs = _proofs(batch)
    first = store_batch_result(db_engine, batch.id, ROOT, proofs, [_token("a")], 1)
    second = store_batch_result(db_engine, batch.id, ROOT, proofs, [_token("a")], 1)
    assert first.stamped_receipt_ids == [receipt.id] and first.complete
    assert second.stamped_receipt_ids == [] and second.token_count == 1
    with pytest.raises(BatchStateError):
        store_batch_result(db_engine, batch.id, "ef" * 32, proofs, [_token("b")], 1)
    assert claim_expired_batch(db_engine, "w4", LEASE_S, now=later + timedelta(days=1)) is None


def test_stamped_only_with_min_tokens(db_engine, make_receipt) -> None:
    made = [make_receipt() for _ in range(3)]
    batch = claim_batch(db_engine, 10, "w1", LEASE_S, now=T0)
    none = store_batch_result(db_engine, batch.id, ROOT, _proofs(batch), [], 2, now=T0)
    assert not none.complete and none.token_count == 0
    one = store_batch_result(db_engine, batch.id, ROOT, _proofs(batch), [_token("a")], 2)
    assert not one.complete and one.token_count == 1 and one.stamped_receipt_ids == []
    with db_engine.connect() as conn:
        pending = get_receipt(conn, made[0].id, None)
    assert pending.status == "pending" and pending.stamped_at is None
    assert pending.root == ROOT and pending.tree_size == 3 and pending.proof == []
    stamped_at = T0 + timedelta(minutes=1)
    two = add_token(db_engine, batch.id, _token("b"), 2, now=stamped_at)
    assert two.complete and two.token_count == 2
    assert two.stamped_receipt_ids == sorted(r.id for r in made)
    with db_engine.connect() as conn:
        done = [get_receipt(conn, r.id, r.api_key_id) for r in made]
        tokens = list_tokens(conn, batch.id)
        finished = get_batch(conn, batch.id)
    assert {r.status for r in done} == {"stamped"} and done[0].stamped_at == stamped_at
    assert [leaf_receipt.proof for leaf_receipt in done] == [["cd" * 32] * i for i in range(3)]
    assert [t.tsa for t in tokens] == ["a", "b"] and tokens[0].serial == str(SERIAL_160)
    assert tokens[0].gen_time == T0 and tokens[0].reply_der.endswith(b"a")
    assert finished.status == "complete" and finished.completed_at == stamped_at
    assert finished.lease_until is None
    late = add_token(db_engine, batch.id, _token("c"), 2)
    assert late.token_count == 3 and late.stamped_receipt_ids == []


def test_store_rejects_bad_input(db_engine, make_receipt) -> None:
    make_receipt()
    batch = claim_batch(db_engine, 10, "w1", LEASE_S)
    with pytest.raises(ValueError):
        store_batch_result(db_engine, batch.id, ROOT, _proofs(batch), [_token("a")], 0)
    with pytest.raises(BatchStateError):
        store_batch_result(db_engine, batch.id, ROOT, {}, [_token("a")], 1)
    with pytest.raises(BatchStateError):
        store_batch_result(db_engine, "bat_missing", ROOT, {}, [], 1)
    with pytest.raises(BatchStateError):
        add_token(db_engine, batch.id, _token("a"), 1)  # no root stored yet
    with db_engine.connect() as conn:
        assert list_tokens(conn, batch.id) == []


def test_batch_errors_and_backoff(db_engine, make_receipt) -> None:
    receipt = make_receipt()
    batch = claim_batch(db_engine, 10, "w1", LEASE_S, now=T0)
    retry_at = T0 + timedelta(seconds=5)
    record_batch_error(db_engine, batch.id, "slow", "timeout", retry_at, rejected=False, now=T0)
    record_batch_error(db_engine, batch.id, "slow", "HTTP 503", retry_at, rejected=False, now=T0)
    record_batch_error(db_engine, batch.id, "picky", "badAlg", None, rejected=True, now=T0)
    with db_engine.connect() as conn:
        assert get_receipt(conn, receipt.id, None).last_error == "picky: badAlg"
        assert list_due_attempts(conn, now=T0) == []
        (due,) = list_due_attempts(conn, now=retry_at)
        query = select(batch_tsa_attempts.c.tsa, batch_tsa_attempts.c.state)
        states = dict(conn.execute(query).all())
    assert (due.tsa, due.attempts, due.last_error, due.state) == ("slow", 2, "HTTP 503", "pending")
    assert states == {"slow": "pending", "picky": "rejected"}
    store_batch_result(db_engine, batch.id, ROOT, _proofs(batch), [_token("slow")], 1)
    record_batch_error(db_engine, batch.id, "slow", "late noise", retry_at, rejected=False)
    with db_engine.connect() as conn:
        stamped = get_receipt(conn, receipt.id, None)
        assert list_due_attempts(conn, now=retry_at) == []
    assert stamped.status == "stamped" and stamped.last_error is None


def test_ids_made_in_one_millisecond_still_sort_in_creation_order() -> None:
    from service.storage.ids import new_receipt_id

    ids = [new_receipt_id() for _ in range(2000)]  # many share a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_tsa_outcomes_give_each_tsas_newest_token_and_failure(db_engine, make_receipt) -> None:
    from service.storage import tsa_outcomes

    make_receipt()
    make_receipt()
    first = claim_batch(db_engine, 1, "w1", LEASE_S, now=T0)
    second = claim_batch(db_engine, 1, "w1", LEASE_S, now=T0)
    later = T0 + timedelta(seconds=10)
    store_batch_result(db_engine, first.id, ROOT, _proofs(first), [_token("up")], 1, now=T0)
    record_batch_error(db_engine, second.id, "up", "timeout", later, rejected=False, now=T0)
    record_batch_error(db_engine, second.id, "flaky", "HTTP 503", None, rejected=True, now=T0)
    record_batch_error(db_engine, first.id, "flaky", "older", later, rejected=False,
                       now=T0 - timedelta(seconds=1))
    with db_engine.connect() as conn:
        up, flaky, never = tsa_outcomes(conn, ["up", "flaky", "never"])
    assert (up.token_at, up.failed_at, up.last_error) == (T0, T0, "timeout")
    assert (flaky.token_at, flaky.failed_at, flaky.last_error) == (None, T0, "HTTP 503")
    assert (never.token_at, never.failed_at, never.last_error) == (None, None, None)
