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
import itertools
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import wallpapers  # noqa: E402
from service.evidence.perceptual import PerceptualHash, query_hashes, registration_hashes  # noqa: E402
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
    find_candidates,
    hash_row,
)
from service.storage.tables import perceptual_hashes  # noqa: E402
from tests.support.alterations import ALTERATIONS, encode  # noqa: E402

COLUMNS = [c.name for c in perceptual_hashes.columns]
LOAD_CHUNK = 20_000  # rows per executemany: bounded memory while loading a million


def _random_rows(count: int, rng: np.random.Generator) -> Any:
    for start in range(0, count, LOAD_CHUNK):
        n = min(LOAD_CHUNK, count - start)
        phashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * 2 + rng.integers(0, 2, n,
                                                                                     dtype=np.uint64)
        dhashes = rng.bytes(32 * n)
        yield [hash_row(f"rnd_{start + i}", 0, int(phashes[i]),
                        int.from_bytes(dhashes[32 * i: 32 * i + 32], "big")) for i in range(n)]


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
        for seed, alter in enumerate(ALTERATIONS.values()):
            queries.append((f"{receipt_id}_0", query_hashes(io.BytesIO(alter(image, seed)))))
    # Every original first, then the other copies, until `limit` rows.
    for variant in range(len(variants[0])):
        for copies in variants:
            if len(stored) < limit:
                rid, copy = copies[variant]
                stored.extend((rid, view) for view in registration_hashes(io.BytesIO(copy)))
    return stored[:limit], queries


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


def _load_sqlite(engine: Any, chunks: Iterable[list[dict[str, object]]]) -> None:
    """Hash rows only (receipts are not needed to measure the index): foreign keys off on a
    raw connection, and plain executemany for a million rows."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("BEGIN")  # the driver autocommits: one transaction for the load
        insert = (f"INSERT INTO perceptual_hashes ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(COLUMNS))})")
        for rows in chunks:
            cursor.executemany(insert, [tuple(r[c] for c in COLUMNS) for r in rows])
        raw.commit()
    finally:
        raw.close()


def _load_postgres(engine: Any, chunks: Iterable[list[dict[str, object]]]) -> None:
    """Hash rows only: the foreign key dropped in this throw-away database, rows COPY'd, the
    band indexes rebuilt afterwards and the table analysed (as a database that grew would be)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("ALTER TABLE perceptual_hashes "
                       "DROP CONSTRAINT fk_perceptual_hashes_receipt_id_receipts")
        for i in range(PHASH_BANDS):
            cursor.execute(f"DROP INDEX ix_perceptual_hashes_band{i}")
        with cursor.copy(f"COPY perceptual_hashes ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for rows in chunks:
                for r in rows:
                    copy.write_row(tuple(r[c] for c in COLUMNS))
        for i in range(PHASH_BANDS):
            cursor.execute(f"CREATE INDEX ix_perceptual_hashes_band{i} "
                           f"ON perceptual_hashes (band{i})")
        cursor.execute("ANALYZE perceptual_hashes")
        raw.commit()
    finally:
        raw.close()


def _popcount(words: np.ndarray) -> np.ndarray:
    return np.bitwise_count(words).astype(np.int32)


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
    with tempfile.TemporaryDirectory() as tmp, _database(args.postgres, tmp) as url:
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        chunks = itertools.chain(_random_rows(args.random, rng), [real_rows])
        if url.startswith("sqlite"):
            _load_sqlite(engine, chunks)
        else:
            _load_postgres(engine, chunks)
        load_s = time.perf_counter() - started
        # The same rows in numpy for the exact scan.
        with engine.connect() as conn:
            rows = conn.execute(perceptual_hashes.select()).all()
        ids = np.array([r.receipt_id for r in rows])
        phash = np.array([r.phash for r in rows], dtype=np.int64).view(np.uint64)
        dhash = np.frombuffer(b"".join(bytes(r.dhash256) for r in rows), dtype=">u8")
        dhash = dhash.astype(np.uint64).reshape(-1, 4)
        del rows
        index_ms: list[float] = []
        exact_ms: list[float] = []
        candidates: list[int] = []
        expected = found = hits = 0
        for owner, query in queries:
            started = time.perf_counter()
            with engine.connect() as conn:
                lookup = find_candidates(conn, [h.phash for h in query], MAX_PHASH_DISTANCE)
            answer = set(closest_matches(
                query, ((v.receipt_id, v.phash, v.dhash256) for v in lookup.views)))
            index_ms.append(1000 * (time.perf_counter() - started))
            candidates.append(lookup.rows_read)
            started = time.perf_counter()
            close = np.zeros(len(ids), dtype=bool)
            for h in query:
                near = _popcount(phash ^ np.uint64(h.phash)) <= MAX_PHASH_DISTANCE
                words = np.array([(h.dhash256 >> (64 * (3 - i))) & (2**64 - 1) for i in range(4)],
                                 dtype=np.uint64)
                far = _popcount(dhash[near] ^ words).sum(axis=1)
                hit = np.flatnonzero(near)[far <= MAX_DHASH_DISTANCE]
                close[hit] = True
            truth = set(ids[close].tolist())
            exact_ms.append(1000 * (time.perf_counter() - started))
            expected += len(truth)
            found += len(truth & answer)
            hits += owner in answer
        engine.dispose()

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 2)

    print(json.dumps({
        "database": "postgresql" if args.postgres else "sqlite",
        "rows": {"random": args.random, "real": len(stored)},
        "load_s": round(load_s, 1),
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
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
