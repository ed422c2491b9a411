"""The perceptual-hash index on both databases: what the band lookup finds, and what it skips."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from service.evidence.perceptual import CELL_VIEWS
from service.storage.perceptual import (
    GUARANTEED_RADIUS,
    PHASH_BAND_BITS,
    PHASH_BANDS,
    bands,
    find_candidates,
    hashes_of,
    hashes_of_images,
    matched_receipts,
    store_hashes,
)
from service.storage.tables import perceptual_cells

RNG_SEED = 6
# View ids for tests that store many views of one receipt: whole views only (cells have their
# own table, tested below).
WHOLE_VIEWS = [view for view in range(1000) if view not in CELL_VIEWS]


def flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def test_hashes_round_trip_including_the_top_bit(db_engine: Engine,
                                                 make_receipt: Callable[..., Any]) -> None:
    receipt = make_receipt()
    high = (1 << 63) | 5  # stored as a negative BIGINT, read back unsigned
    with db_engine.begin() as conn:
        store_hashes(conn, receipt.id, [(0, high, (1 << 255) | 1), (1, 7, 9)])
        store_hashes(conn, receipt.id, [(0, high, (1 << 255) | 1), (1, 7, 9)])  # idempotent
    with db_engine.connect() as conn:
        stored = hashes_of(conn, receipt.id)
    assert [(h.view, h.phash, h.dhash256) for h in stored] == [
        (0, high, (1 << 255) | 1), (1, 7, 9)]


def test_cells_are_kept_apart_and_looked_up_only_there(
        db_engine: Engine, make_receipt: Callable[..., Any]) -> None:
    """Cell views go to perceptual_cells: the first lookup of every search never reads
    them, the second finds them, and a receipt's views (also copied to a later receipt of the
    same bytes) include them."""
    receipt = make_receipt()
    cell, whole = CELL_VIEWS[1], 0
    with db_engine.begin() as conn:
        store_hashes(conn, receipt.id, [(whole, 1111, 1), (cell, 2222, 2)])
        store_hashes(conn, receipt.id, [(whole, 1111, 1), (cell, 2222, 2)])  # idempotent
    with db_engine.connect() as conn:
        assert [(h.view, h.phash) for h in hashes_of(conn, receipt.id)] == [
            (whole, 1111), (cell, 2222)]
        assert [h.view for h in hashes_of_images(conn, [receipt.image_sha256])[
            receipt.image_sha256]] == [whole, cell]
        assert find_candidates(conn, [2222], 0).views == []
        found = find_candidates(conn, [2222], 0, perceptual_cells).views
        assert [(v.receipt_id, v.view, v.phash) for v in found] == [(receipt.id, cell, 2222)]
        assert find_candidates(conn, [1111], 0, perceptual_cells).views == []


def test_every_hash_within_the_guaranteed_radius_is_found(
        db_engine: Engine, make_receipt: Callable[..., Any]) -> None:
    rng = random.Random(RNG_SEED)
    receipt = make_receipt()
    query = rng.getrandbits(64)
    near = [flip(query, rng.sample(range(64), rng.randint(0, GUARANTEED_RADIUS)))
            for _ in range(40)]
    with db_engine.begin() as conn:
        store_hashes(conn, receipt.id, [(view, value, 0) for view, value in zip(WHOLE_VIEWS, near)])
    with db_engine.connect() as conn:
        found = {h.phash for h in find_candidates(conn, [query]).views}
    assert set(near) <= found


def test_hashes_with_every_band_two_bits_away_are_not_read(
        db_engine: Engine, make_receipt: Callable[..., Any]) -> None:
    """The lookup goes through the band indexes: rows no band points at are never fetched."""
    query = 0x0123_4567_89AB_CDEF
    lowest = [sum(PHASH_BAND_BITS[i + 1:]) for i in range(PHASH_BANDS)]  # each band's bit 0
    two_per_band = [low + offset for low in lowest for offset in (0, 1)]
    far = flip(query, two_per_band)  # 6 bits away, but 2 in every band
    # 5 bits (the guaranteed radius), the last band one bit away.
    one_band_close = flip(query, [lowest[0], lowest[0] + 1, lowest[1], lowest[1] + 1, 0])
    receipt = make_receipt()
    with db_engine.begin() as conn:
        store_hashes(conn, receipt.id, [(0, far, 0), (1, one_band_close, 0)])
    with db_engine.connect() as conn:
        candidates = find_candidates(conn, [query])
        within_four = find_candidates(conn, [query], max_distance=4)
    assert {h.phash for h in candidates.views} == {one_band_close}
    assert candidates.rows_read == 1
    assert within_four.views == [] and within_four.rows_read == 1
    assert all(a != b for a, b in zip(bands(far), bands(query), strict=True))


def test_matched_receipts_scope_own_and_public(db_engine: Engine,
                                               make_receipt: Callable[..., Any],
                                               make_api_key: Callable[..., Any]) -> None:
    mine_key, _ = make_api_key("mine")
    other_key, _ = make_api_key("other")
    mine = make_receipt(mine_key.id)
    private = make_receipt(other_key.id)
    public = make_receipt(other_key.id, public=True)
    ids = [mine.id, private.id, public.id]
    with db_engine.connect() as conn:
        as_mine = [r.id for r in matched_receipts(conn, ids, mine_key.id)]
        anonymous = [r.id for r in matched_receipts(conn, ids, None)]
    assert as_mine == [mine.id, public.id]
    assert anonymous == [public.id]


def test_the_same_bytes_lookup_reads_an_index_not_the_table(tmp_path: Path) -> None:
    """hashes_of_image runs once per hashed image: a table scan would grow with every upload.
    The plan is read on SQLite; PostgreSQL gets the same index from the same migration."""
    from sqlalchemy import select

    from service.storage import make_engine, upgrade
    from service.storage.tables import perceptual_hashes, receipts

    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        upgrade(engine)
        query = (select(perceptual_hashes.c.receipt_id)
                 .join(receipts, receipts.c.id == perceptual_hashes.c.receipt_id)
                 .where(receipts.c.image_sha256 == "ab" * 32).limit(1))
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    finally:
        engine.dispose()
    # Migration 0008 made it (image_sha256, api_key_id, id): a search on its first column.
    assert "INDEX ix_receipts_image_sha256_api_key_id_id (image_sha256=?)" in plan


def test_candidates_are_exactly_what_an_exact_scan_finds_within_the_radius(
        db_engine: Engine, make_receipt: Callable[..., Any]) -> None:
    """Both phases together: every view within GUARANTEED_RADIUS, and only those, with views
    that share a pHash (two receipts of one picture) all fetched."""
    rng = random.Random(RNG_SEED)
    query = rng.getrandbits(64)
    stored = [flip(query, rng.sample(range(64), rng.randint(0, 2 * GUARANTEED_RADIUS)))
              for _ in range(150)] + [rng.getrandbits(64) for _ in range(50)]
    first, second = make_receipt(), make_receipt()
    with db_engine.begin() as conn:
        store_hashes(conn, first.id, [(view, value, view)
                                      for view, value in zip(WHOLE_VIEWS, stored)])
        store_hashes(conn, second.id, [(0, stored[0], 1), (1, stored[1], 2)])
    rows = [(first.id, view, value, view) for view, value in zip(WHOLE_VIEWS, stored)] + [
        (second.id, 0, stored[0], 1), (second.id, 1, stored[1], 2)]
    exact = {(rid, view, value, dhash) for rid, view, value, dhash in rows
             if (value ^ query).bit_count() <= GUARANTEED_RADIUS}
    with db_engine.connect() as conn:
        found = find_candidates(conn, [query], max_distance=GUARANTEED_RADIUS)
    assert {(v.receipt_id, v.view, v.phash, v.dhash256) for v in found.views} == exact
    assert len(found.views) == len(exact) > 2


def test_the_band_lookup_reads_the_phash_from_the_index_alone(
        db_engine: Engine, make_receipt: Callable[..., Any]) -> None:
    """Phase 1 never reads the table: a covering index on SQLite, an index-only scan on
    PostgreSQL (the plans asked for with sequential and bitmap scans off, on a tiny table)."""
    receipt = make_receipt()
    with db_engine.begin() as conn:
        store_hashes(conn, receipt.id, [(0, 12345, 0)])
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(db_engine, "before_cursor_execute", record)
    with db_engine.connect() as conn:
        find_candidates(conn, [12345], max_distance=0)
    event.remove(db_engine, "before_cursor_execute", record)
    band_lookup = next(s for s in statements if "UNION ALL" in s[0])
    with db_engine.connect() as conn:
        if db_engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + band_lookup[0], band_lookup[1]))
            assert plan.count("COVERING INDEX ix_perceptual_hashes_band") == PHASH_BANDS, plan
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
            plan = " ".join(row[0] for row in conn.exec_driver_sql(
                "EXPLAIN " + band_lookup[0], band_lookup[1]))
            assert plan.count("Index Only Scan") == PHASH_BANDS, plan
