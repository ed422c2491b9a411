"""Search index at scale: query time (p50/p99) and recall against an exact scan, as JSON.

Loads RANDOM random hash rows (uniform 64-bit pHash and 256-bit hash: the worst case for the
band index, whose bands are then as full as they can be) and about REAL hashes of real
pictures (the stored views of the Debian wallpapers, see bench/wallpapers.py) into a migrated
SQLite database in a temporary directory (or, with --postgres, a fresh PostgreSQL database).
Queries are the altered copies of those pictures (tests/support/alterations.py), each searched
with the hashes the API looks up (service.evidence.perceptual.query_hashes).

    index   storage.perceptual.find_candidates (the band indexes) + similarity.closeness
    exact   every row compared in numpy (popcount over all hashes): the ground truth
    recall  matches the index returns / matches the exact scan finds, over all queries

    .venv/bin/python bench/search.py [--random 1000000] [--real 1000] [--postgres ADMIN_URL]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Index, event, inspect, text
from sqlalchemy.schema import CreateIndex, DropIndex

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import wallpapers  # noqa: E402
from service.evidence.perceptual import (  # noqa: E402
    PerceptualHash,
    is_cell,
    query_hashes,
    registration_hashes,
)
from service.evidence.similarity import (  # noqa: E402
    MAX_DHASH_DISTANCE,
    MAX_PHASH_DISTANCE,
    closest_matches,
)
from service.storage import perceptual as perceptual_store  # noqa: E402
from service.storage.engine import make_engine  # noqa: E402
from service.storage.migrate import upgrade  # noqa: E402
from service.storage.perceptual import (  # noqa: E402
    PHASH_BAND_BITS,
    PHASH_BANDS,
    bands,
    find_candidates,
    hash_row,
)
from service.storage.tables import perceptual_hashes  # noqa: E402
from tests.support.alterations import ALTERATIONS, encode  # noqa: E402

COLUMNS = [c.name for c in perceptual_hashes.columns]
LOAD_CHUNK = 200_000  # rows per COPY block / executemany: bounded memory while loading 19M
RANDOM_ID_DIGITS = 8  # rnd_00000042: fixed width, so a COPY block is one numpy record array
_SHIFTS = [sum(PHASH_BAND_BITS[i + 1:]) for i in range(PHASH_BANDS)]  # as storage.perceptual


# The alterations the queries are made with: those of this bench's earlier figures, so that they
# stay comparable. The badges of bench/robustness.py are left out on purpose: their whole views
# sit 6-11 bits from the original's (the first lookup's recall vs the exact scan fell to 0.976
# with them, 2026-12-04), which is why the search then looks up cells (not measured here).
QUERY_ALTERATIONS = ("jpeg_q50", "jpeg_q70", "jpeg_q90", "resize_50", "resize_200", "crop_5",
                     "crop_10", "watermark", "watermark_painted_over", "brightness_plus_15",
                     "brightness_minus_15", "border_10", "mirror", "overlay_2", "overlay_5")


@dataclass(frozen=True)
class RandomHashes:
    """The random rows as arrays (row i is receipt rnd_<i>, view 0): loaded in chunks and kept
    for the exact scan, never as millions of Python objects."""

    phash: np.ndarray  # uint64
    dhash: np.ndarray  # uint8, (rows, 32): the 256-bit hash, big-endian

    def __len__(self) -> int:
        return len(self.phash)


def _random_hashes(count: int, rng: np.random.Generator) -> RandomHashes:
    phash = rng.integers(0, np.iinfo(np.uint64).max, size=count, dtype=np.uint64, endpoint=True)
    dhash = np.frombuffer(rng.bytes(32 * count), dtype=np.uint8).reshape(count, 32)
    return RandomHashes(phash, dhash)


def _bands(phash: np.ndarray) -> list[np.ndarray]:
    """storage.perceptual.bands, vectorised (checked against it in _check_bands)."""
    return [((phash >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int32)
            for shift, bits in zip(_SHIFTS, PHASH_BAND_BITS, strict=True)]


def _check_bands(hashes: RandomHashes) -> None:
    sample = hashes.phash[:100]
    arrays = _bands(sample)
    for i, value in enumerate(sample.tolist()):
        assert [int(a[i]) for a in arrays] == bands(value), "vectorised bands disagree"


def _receipt_ids(start: int, stop: int) -> np.ndarray:
    """rnd_<index> for rows start..stop, as fixed-width bytes (n, 4 + RANDOM_ID_DIGITS)."""
    index = np.arange(start, stop, dtype=np.int64)
    digits = np.empty((stop - start, RANDOM_ID_DIGITS), dtype=np.uint8)
    for k in range(RANDOM_ID_DIGITS):
        digits[:, RANDOM_ID_DIGITS - 1 - k] = 48 + (index // 10 ** k) % 10
    prefix = np.broadcast_to(np.frombuffer(b"rnd_", dtype=np.uint8), (stop - start, 4))
    return np.hstack([prefix, digits])


def _random_id(index: int) -> str:
    return f"rnd_{index:0{RANDOM_ID_DIGITS}d}"


# PostgreSQL's binary COPY format: a header, then per row the field count and each field as
# (int32 length, big-endian value), then a trailer. Every field here has a fixed width.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_COPY_TRAILER = b"\xff\xff"
_ID_WIDTH = 4 + RANDOM_ID_DIGITS
_FIELDS = {"receipt_id": ("S", _ID_WIDTH), "view": (">i4", 4), "phash": (">i8", 8),
           "dhash256": ("V", 32), **{f"band{i}": (">i4", 4) for i in range(PHASH_BANDS)}}
_COPY_ROW = np.dtype([("n", ">i2")] + [
    item for c in COLUMNS for item in ((f"{c}_len", ">i4"),
                                       (c, f"{_FIELDS[c][0]}{_FIELDS[c][1]}"
                                        if _FIELDS[c][0] in "SV" else _FIELDS[c][0]))])


def _copy_block(hashes: RandomHashes, start: int, stop: int) -> bytes:
    """Rows start..stop in binary COPY format, built in numpy (no Python loop per row)."""
    block = np.zeros(stop - start, dtype=_COPY_ROW)
    block["n"] = len(COLUMNS)
    for c in COLUMNS:
        block[f"{c}_len"] = _FIELDS[c][1]
    block["receipt_id"] = _receipt_ids(start, stop).view(f"S{_ID_WIDTH}").ravel()
    block["view"] = 0
    block["phash"] = hashes.phash[start:stop].view(np.int64)
    block["dhash256"] = hashes.dhash[start:stop].view("V32").ravel()
    for i, band in enumerate(_bands(hashes.phash[start:stop])):
        block[f"band{i}"] = band
    return block.tobytes()


def _sqlite_rows(hashes: RandomHashes, start: int, stop: int) -> list[tuple[object, ...]]:
    phash = hashes.phash[start:stop]
    dhash = hashes.dhash[start:stop].tobytes()
    columns = {"receipt_id": [_random_id(i) for i in range(start, stop)],
               "view": [0] * (stop - start), "phash": phash.view(np.int64).tolist(),
               "dhash256": [dhash[32 * i: 32 * i + 32] for i in range(stop - start)],
               **{f"band{i}": b.tolist() for i, b in enumerate(_bands(phash))}}
    return list(zip(*(columns[c] for c in COLUMNS), strict=True))


def _stored_variants(image: Any) -> list[bytes]:
    """The original, then copies registered by others (smaller, re-encoded): more real rows."""
    half = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    return [encode(image, "PNG"), encode(half, "JPEG", quality=80),
            encode(image, "JPEG", quality=60)]


def _real_hashes(limit: int, max_side: int) -> tuple[list[tuple[str, PerceptualHash]],
                                                      list[tuple[str, list[PerceptualHash]]]]:
    """Stored views of each wallpaper (up to `limit`), and the queries: altered copies."""
    stored: list[tuple[str, PerceptualHash]] = []
    queries: list[tuple[str, list[PerceptualHash]]] = []
    variants: list[list[tuple[str, bytes]]] = []
    for index, path in enumerate(wallpapers.pictures()):
        image = wallpapers.load_rgb(path, max_side)
        receipt_id = f"real_{index}"
        variants.append([(f"{receipt_id}_{n}", copy)
                         for n, copy in enumerate(_stored_variants(image))])
        for seed, alter in enumerate(ALTERATIONS[name] for name in QUERY_ALTERATIONS):
            copy = io.BytesIO(alter(image, seed))
            queries.append((f"{receipt_id}_0", _whole(query_hashes(copy))))
    # Every original first, then the other copies, until `limit` rows.
    for variant in range(len(variants[0])):
        for copies in variants:
            if len(stored) < limit:
                rid, copy = copies[variant]
                stored.extend((rid, view)
                              for view in _whole(registration_hashes(io.BytesIO(copy))))
    return stored[:limit], queries


def _whole(hashes: list[PerceptualHash]) -> list[PerceptualHash]:
    """The whole views only: what the first lookup of every search reads (perceptual_hashes).
    Cells have a table of their own, looked up only when that finds nothing."""
    return [h for h in hashes if not is_cell(h.view)]


@contextmanager
def _database(postgres: str | None, tmp: str) -> Iterator[str]:
    """A SQLite file in `tmp`, or a fresh PostgreSQL database on the `postgres` server (its
    admin URL), dropped afterwards."""
    if postgres is None:
        yield f"sqlite:///{tmp}/search.db"
        return
    import psycopg
    from sqlalchemy import make_url

    admin = make_url(postgres)
    name = f"chronoseal_bench_{secrets.token_hex(4)}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _band_indexes(engine: Any) -> list[Index]:
    """The band indexes as tables.py declares them, checked against the migrated database's."""
    declared = [ix for ix in perceptual_hashes.indexes
                if any(c.name.startswith("band") for c in ix.columns)]
    existing = {ix["name"]: ix["column_names"]
                for ix in inspect(engine).get_indexes("perceptual_hashes")}
    for ix in declared:
        assert existing.get(ix.name) == [c.name for c in ix.columns], (
            f"migrations and tables.py disagree on {ix.name}: {existing}")
    return sorted(declared, key=lambda ix: str(ix.name))


def _ddl(engine: Any, statement: Any) -> str:
    return str(statement.compile(dialect=engine.dialect))


def _load_sqlite(engine: Any, hashes: RandomHashes, real_rows: list[dict[str, object]]
                 ) -> float:
    """Hash rows only (receipts are not needed to measure the index): foreign keys and the
    journal off, one transaction, band indexes dropped before and rebuilt after. Returns the
    seconds spent rebuilding the indexes."""
    indexes = _band_indexes(engine)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for pragma in ("foreign_keys=OFF", "journal_mode=OFF", "synchronous=OFF"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.execute("BEGIN")  # the driver autocommits: one transaction for the load
        for ix in indexes:
            cursor.execute(_ddl(engine, DropIndex(ix)))
        insert = (f"INSERT INTO perceptual_hashes ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(COLUMNS))})")
        for start in range(0, len(hashes), LOAD_CHUNK):
            cursor.executemany(insert, _sqlite_rows(
                hashes, start, min(start + LOAD_CHUNK, len(hashes))))
        cursor.executemany(insert, [tuple(r[c] for c in COLUMNS) for r in real_rows])
        started = time.perf_counter()
        for ix in indexes:
            cursor.execute(_ddl(engine, CreateIndex(ix)))
        cursor.execute("ANALYZE perceptual_hashes")
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def _load_postgres(engine: Any, hashes: RandomHashes, real_rows: list[dict[str, object]]
                   ) -> float:
    """Hash rows only: the foreign key dropped in this throw-away database, rows COPY'd in
    binary, the band indexes rebuilt afterwards, then VACUUM ANALYZE (as autovacuum would have
    done on a database that grew: it sets the visibility map that index-only scans need).
    Returns the seconds spent rebuilding the indexes and vacuuming."""
    indexes = _band_indexes(engine)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("ALTER TABLE perceptual_hashes "
                       "DROP CONSTRAINT fk_perceptual_hashes_receipt_id_receipts")
        for ix in indexes:
            cursor.execute(_ddl(engine, DropIndex(ix)))
        with cursor.copy(f"COPY perceptual_hashes ({', '.join(COLUMNS)}) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_HEADER)
            for start in range(0, len(hashes), LOAD_CHUNK):
                copy.write(_copy_block(hashes, start, min(start + LOAD_CHUNK, len(hashes))))
            copy.write(_COPY_TRAILER)
        raw.commit()
        cursor.executemany(
            f"INSERT INTO perceptual_hashes ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(COLUMNS))})",
            [tuple(r[c] for c in COLUMNS) for r in real_rows])
        started = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")  # index builds sort in memory
        for ix in indexes:
            cursor.execute(_ddl(engine, CreateIndex(ix)))
        raw.commit()
        raw.driver_connection.autocommit = True  # VACUUM runs outside a transaction
        cursor.execute("VACUUM ANALYZE perceptual_hashes")
        return time.perf_counter() - started
    finally:
        raw.close()


def _explain(engine: Any, phashes: list[int]) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement one lookup runs (PostgreSQL): where its time
    goes, printed to stderr so the JSON stays one object."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        find_candidates(conn, phashes, MAX_PHASH_DISTANCE)
    event.remove(engine, "before_cursor_execute", record)
    lines: list[str] = []
    with engine.connect() as conn:
        for statement, params in statements:
            lines += [row[0] for row in conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, params)]
    return lines


def _index_bytes(engine: Any, url: str, tmp: str) -> dict[str, int]:
    """What the index costs on disk: each band index (PostgreSQL) or the database file."""
    if url.startswith("sqlite"):
        return {"sqlite_file": Path(tmp, "search.db").stat().st_size}
    with engine.connect() as conn:
        sizes = {str(ix.name): conn.execute(text("SELECT pg_relation_size(:n)"),
                                            {"n": str(ix.name)}).scalar_one()
                 for ix in perceptual_hashes.indexes}
        sizes["table"] = conn.execute(
            text("SELECT pg_relation_size('perceptual_hashes')")).scalar_one()
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--random", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=1_000)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--postgres", metavar="ADMIN_URL",
                        help="measure on PostgreSQL (a fresh database on this server) instead "
                             "of SQLite, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--band-radius", type=int, default=perceptual_store.BAND_RADIUS,
                        help="bits looked up around each band (the service's is the default)")
    args = parser.parse_args(argv)
    perceptual_store.BAND_RADIUS = args.band_radius
    rng = np.random.default_rng(6)
    stored, queries = _real_hashes(args.real, args.max_side)
    real_rows = [hash_row(rid, h.view, h.phash, h.dhash256) for rid, h in stored]
    hashes = _random_hashes(args.random, rng)
    _check_bands(hashes)
    # The exact scan's copy of every row: the random arrays, then the real rows.
    ids_real = [str(r["receipt_id"]) for r in real_rows]
    phash = np.concatenate([hashes.phash, np.array(
        [h.phash for _, h in stored], dtype=np.uint64)])
    dhash = np.concatenate([hashes.dhash, np.frombuffer(
        b"".join(bytes(r["dhash256"]) for r in real_rows), dtype=np.uint8).reshape(-1, 32)])
    dhash = dhash.view(">u8").astype(np.uint64)  # (rows, 4) words, most significant first
    with tempfile.TemporaryDirectory() as tmp, _database(args.postgres, tmp) as url:
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        if url.startswith("sqlite"):
            index_s = _load_sqlite(engine, hashes, real_rows)
        else:
            index_s = _load_postgres(engine, hashes, real_rows)
        load_s = time.perf_counter() - started
        del hashes
        sizes = _index_bytes(engine, url, tmp)
        index_ms: list[float] = []
        exact_ms: list[float] = []
        candidates: list[int] = []
        expected = found = hits = 0
        for owner, query in queries:
            started = time.perf_counter()
            with engine.connect() as conn:
                lookup = find_candidates(conn, [h.phash for h in query], MAX_PHASH_DISTANCE)
            answer = set(closest_matches(
                query, ((v.receipt_id, v.view, v.phash, v.dhash256) for v in lookup.views)))
            index_ms.append(1000 * (time.perf_counter() - started))
            candidates.append(lookup.rows_read)
            started = time.perf_counter()
            close: set[int] = set()
            for h in query:
                near = np.flatnonzero(
                    np.bitwise_count(phash ^ np.uint64(h.phash)) <= MAX_PHASH_DISTANCE)
                words = np.array([(h.dhash256 >> (64 * (3 - i))) & (2**64 - 1) for i in range(4)],
                                 dtype=np.uint64)
                far = np.bitwise_count(dhash[near] ^ words).astype(np.int32).sum(axis=1)
                close.update(near[far <= MAX_DHASH_DISTANCE].tolist())
            truth = {_random_id(i) if i < args.random else ids_real[i - args.random]
                     for i in close}
            exact_ms.append(1000 * (time.perf_counter() - started))
            expected += len(truth)
            found += len(truth & answer)
            hits += owner in answer
        if not url.startswith("sqlite"):
            print("\n".join(_explain(engine, [h.phash for h in queries[0][1]])), file=sys.stderr)
        engine.dispose()

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 2)

    print(json.dumps({
        "database": "postgresql" if args.postgres else "sqlite",
        "rows": {"random": args.random, "real": len(stored)},
        "load_s": round(load_s, 1),
        "index_build_s": round(index_s, 1),
        "bytes": sizes,
        "queries": len(queries),
        "index_query_ms": {"p50": pct(index_ms, 50), "p99": pct(index_ms, 99),
                           "mean": round(statistics.fmean(index_ms), 2)},
        "exact_scan_ms": {"p50": pct(exact_ms, 50), "p99": pct(exact_ms, 99)},
        "rows_read_per_query": {"p50": pct(candidates, 50), "p99": pct(candidates, 99)},
        "recall_vs_exact_scan": round(found / expected, 4) if expected else None,
        "exact_matches": expected,
        "queries_finding_their_original": round(hits / len(queries), 4),
        "band_radius": args.band_radius,
        "band_bits": list(PHASH_BAND_BITS),
        "guaranteed_phash_radius": PHASH_BANDS * (args.band_radius + 1) - 1,
        "thresholds": {"phash": MAX_PHASH_DISTANCE, "dhash256": MAX_DHASH_DISTANCE},
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
