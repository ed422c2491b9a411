"""Perceptual hashes of registered images: storing them, and finding near neighbours by index.

The lookup is multi-index hashing (Norouzi et al., "Fast Search in Hamming Space with
Multi-Index Hashing"): the 64-bit pHash is cut into PHASH_BANDS bands (PHASH_BAND_BITS wide,
most significant first), each indexed. Two hashes within Hamming distance d differ by at most
floor(d / PHASH_BANDS) bits in at least one band, so looking up every band value within
BAND_RADIUS of the query's finds every stored hash within GUARANTEED_RADIUS, and the database
reads only those index entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Connection,
    Integer,
    Table,
    and_,
    any_,
    delete,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)

from service.evidence.perceptual import is_cell
from service.storage.tables import (
    PHASH_BAND_BITS,
    PHASH_BANDS,
    perceptual_cells,
    perceptual_hashes,
    receipts,
    tokens,
)

_SHIFTS = tuple(sum(PHASH_BAND_BITS[i + 1:]) for i in range(PHASH_BANDS))
# Band values within this many bits of the query's are looked up: 1 + 22 per band and query
# hash. With 16-bit bands, radius 2 read eight times the rows of radius 1 (bench/search.py at
# 1M rows) and found the same matches: a copy meets one of the original's views much closer
# than MAX_PHASH_DISTANCE, so some band is within 1 bit.
BAND_RADIUS = 1
GUARANTEED_RADIUS = PHASH_BANDS * (BAND_RADIUS + 1) - 1  # 5: every hash this close is found


@dataclass(frozen=True)
class StoredHash:
    """One stored view's hashes (phash as the unsigned 64-bit value)."""

    receipt_id: str
    view: int
    phash: int
    dhash256: int


@dataclass(frozen=True)
class MatchedReceipt:
    """What search answers about a receipt: its time, digest, owner and TSA times."""

    id: str
    api_key_id: str
    public: bool
    image_sha256: str
    created_at: datetime
    stamped_at: datetime | None
    tsa_times: dict[str, datetime]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def bands(phash: int) -> list[int]:
    """The PHASH_BANDS bands of a 64-bit hash (PHASH_BAND_BITS), most significant first."""
    return [(phash >> shift) & ((1 << bits) - 1)
            for shift, bits in zip(_SHIFTS, PHASH_BAND_BITS, strict=True)]


def _within(value: int, radius: int, bits: int) -> list[int]:
    found = [value]
    for flips in range(1, radius + 1):
        for positions in combinations(range(bits), flips):
            flipped = value
            for bit in positions:
                flipped ^= 1 << bit
            found.append(flipped)
    return found


def hash_row(receipt_id: str, view: int, phash: int, dhash256: int) -> dict[str, object]:
    """The row stored for one view (also used by bench/search.py for bulk loads)."""
    row: dict[str, object] = {
        "receipt_id": receipt_id, "view": view, "phash": _signed(phash),
        "dhash256": dhash256.to_bytes(32, "big"),
    }
    row.update({f"band{i}": band for i, band in enumerate(bands(phash))})
    return row


def store_hashes(conn: Connection, receipt_id: str,
                 hashes: Iterable[tuple[int, int, int]]) -> None:
    """Replace the receipt's hashes with (view, phash, dhash256) triples, and take it off the
    work list (also with no triples: an image that gave none is done); idempotent."""
    store_many_hashes(conn, {receipt_id: hashes})


def store_many_hashes(conn: Connection,
                      hashes: Mapping[str, Iterable[tuple[int, int, int]]]) -> None:
    """store_hashes for several receipts in three statements (the hashing worker stores a
    chunk of images at a time: per receipt, the statements cost more than the rows)."""
    if not hashes:
        return
    ids = list(hashes)
    for table in (perceptual_hashes, perceptual_cells):
        conn.execute(delete(table).where(table.c.receipt_id.in_(ids)))
    clear_hash_pending(conn, *ids)
    rows: dict[Table, list[dict[str, object]]] = {perceptual_hashes: [], perceptual_cells: []}
    for receipt_id, triples in hashes.items():
        for view, phash, dhash in triples:
            table = perceptual_cells if is_cell(view) else perceptual_hashes
            rows[table].append(hash_row(receipt_id, view, phash, dhash))
    for table, own in rows.items():
        if own:
            conn.execute(table.insert(), own)


def hashes_of(conn: Connection, receipt_id: str) -> list[StoredHash]:
    """The stored views of one receipt, by view (its cells last)."""
    return [view for table in (perceptual_hashes, perceptual_cells)
            for view in views_of(conn, table, [receipt_id])]


def views_of(conn: Connection, table: Table, receipt_ids: Sequence[str]) -> list[StoredHash]:
    """Every view `table` holds for the receipts (by receipt, then view)."""
    if not receipt_ids:
        return []
    query = (select(table).where(table.c.receipt_id.in_(list(receipt_ids)))
             .order_by(table.c.receipt_id, table.c.view))
    return [_stored(row) for row in conn.execute(query)]


def hashed_receipts(conn: Connection, receipt_ids: Sequence[str]) -> set[str]:
    """Those of `receipt_ids` that have stored views."""
    if not receipt_ids:
        return set()
    return set(conn.execute(select(perceptual_hashes.c.receipt_id).distinct().where(
        perceptual_hashes.c.receipt_id.in_(list(receipt_ids)))).scalars())


def hashes_of_image(conn: Connection, image_sha256: str) -> list[StoredHash]:
    """The views stored for any receipt of these exact bytes (same bytes, same hashes)."""
    return hashes_of_images(conn, [image_sha256]).get(image_sha256, [])


def hashes_of_images(conn: Connection, digests: Sequence[str]) -> dict[str, list[StoredHash]]:
    """hashes_of_image for several digests in one query: by digest, the views of one of its
    hashed receipts (digests none of whose receipts is hashed are left out)."""
    if not digests:
        return {}
    query = (select(receipts.c.image_sha256, perceptual_hashes)
             .join(receipts, receipts.c.id == perceptual_hashes.c.receipt_id)
             .where(receipts.c.image_sha256.in_(list(digests)))
             .order_by(perceptual_hashes.c.receipt_id, perceptual_hashes.c.view))
    found: dict[str, list[StoredHash]] = {}
    chosen: dict[str, str] = {}  # digest -> the receipt whose views are taken
    for row in conn.execute(query):
        digest, stored = row.image_sha256, _stored(row)
        if chosen.setdefault(digest, stored.receipt_id) == stored.receipt_id:
            found.setdefault(digest, []).append(stored)
    if chosen:  # that receipt's cells too (none for images hashed before migration 0020)
        digest_of = {receipt_id: digest for digest, receipt_id in chosen.items()}
        for stored in views_of(conn, perceptual_cells, list(digest_of)):
            found[digest_of[stored.receipt_id]].append(stored)
    return found


def _stored(row: object) -> StoredHash:
    mapping = row._mapping  # type: ignore[attr-defined]
    return StoredHash(mapping["receipt_id"], mapping["view"], _unsigned(mapping["phash"]),
                      int.from_bytes(bytes(mapping["dhash256"]), "big"))


@dataclass(frozen=True)
class Candidates:
    """What one index lookup found: the views close enough, and how many rows it read."""

    views: list[StoredHash]
    rows_read: int


def _one_of(conn: Connection, column: ColumnElement[int], values: list[int],
            item: Integer | BigInteger | None = None) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter instead of hundreds
    (a query looks up ~140 values per band: binding them one by one cost more than the scan)."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(values, ARRAY(item or Integer())))
    return column.in_(values)


def _band_phashes(conn: Connection, values: list[set[int]], table: Table
                  ) -> CompoundSelect[int]:
    """Phase 1: the pHash of every view whose band i is one of values[i], one SELECT per band
    joined by UNION ALL (an OR of the three became a bitmap scan on PostgreSQL, which reads
    the table; each band alone is an index-only scan of its (band, phash) index)."""
    columns = table.c
    parts = [select(columns.phash).where(_one_of(conn, columns[f"band{i}"], sorted(vals)))
             for i, vals in enumerate(values)]
    return union_all(*parts)


def find_candidates(conn: Connection, phashes: Sequence[int], max_distance: int = 64,
                    table: Table = perceptual_hashes) -> Candidates:
    """Stored views whose bands are within BAND_RADIUS of a query's, read through the band
    indexes only, and kept when their pHash is within `max_distance` of one of `phashes`.

    Every view within GUARANTEED_RADIUS (and `max_distance`) is among them. Two phases: the
    band indexes, which hold (band, phash), answer the pHashes alone without reading the table;
    only the views of the few pHashes close enough are then fetched, by band 0 and pHash
    (the same index). rows_read counts the index entries of phase 1. `table` is
    perceptual_hashes or perceptual_cells (the same layout).
    """
    values: list[set[int]] = [set() for _ in range(PHASH_BANDS)]
    for phash in phashes:
        for i, band in enumerate(bands(phash)):
            values[i].update(_within(band, BAND_RADIUS, PHASH_BAND_BITS[i]))
    kept: set[int] = set()
    rows_read = 0
    for signed in conn.execute(_band_phashes(conn, values, table)).scalars():
        rows_read += 1
        phash = signed & 0xFFFF_FFFF_FFFF_FFFF  # the stored two's complement, unsigned again
        for q in phashes:  # a plain loop: a generator per row cost a sixth of the lookup
            if (phash ^ q).bit_count() <= max_distance:
                kept.add(signed)
                break
    if not kept:
        return Candidates([], rows_read)
    columns = table.c
    first = {bands(_unsigned(signed))[0] for signed in kept}
    query = select(columns.receipt_id, columns.view, columns.phash, columns.dhash256).where(
        _one_of(conn, columns.band0, sorted(first)),
        _one_of(conn, columns.phash, sorted(kept), BigInteger()))
    views = [StoredHash(receipt_id, view, _unsigned(signed), int.from_bytes(dhash, "big"))
             for receipt_id, view, signed, dhash in conn.execute(query)]
    return Candidates(views, rows_read)


def matched_receipts(conn: Connection, receipt_ids: Sequence[str],
                     api_key_id: str | None) -> list[MatchedReceipt]:
    """The receipts among `receipt_ids` that `api_key_id` may see: its own and public ones
    (public ones only when None), with their TSA times, oldest first."""
    if not receipt_ids:
        return []
    visible = receipts.c.public == true()
    if api_key_id is not None:
        visible = or_(visible, receipts.c.api_key_id == api_key_id)
    query = (
        select(receipts.c.id, receipts.c.api_key_id, receipts.c.public, receipts.c.image_sha256,
               receipts.c.created_at, receipts.c.stamped_at, tokens.c.tsa, tokens.c.gen_time)
        .select_from(receipts.outerjoin(
            tokens, and_(tokens.c.batch_id == receipts.c.batch_id,
                         receipts.c.status == "stamped")))
        .where(receipts.c.id.in_(list(receipt_ids)), visible)
        .order_by(receipts.c.created_at, receipts.c.id)
    )
    found: dict[str, MatchedReceipt] = {}
    for row in conn.execute(query):
        receipt = found.get(row.id)
        if receipt is None:
            receipt = found[row.id] = MatchedReceipt(
                row.id, row.api_key_id, bool(row.public), row.image_sha256, row.created_at,
                row.stamped_at, {})
        if row.tsa is not None:
            receipt.tsa_times[row.tsa] = row.gen_time
    return list(found.values())


def clear_hash_pending(conn: Connection, *receipt_ids: str) -> None:
    """Take the receipts off the hashing work list."""
    if receipt_ids:
        conn.execute(update(receipts).where(receipts.c.id.in_(receipt_ids))
                     .values(hash_pending=False))


@dataclass(frozen=True)
class ImageToHash:
    """What hashing needs of a receipt on the work list."""

    receipt_id: str
    image_sha256: str
    image_size: int | None  # None: registered by digest only, no image to hash


def images_to_hash(conn: Connection, receipt_ids: Sequence[str]) -> list[ImageToHash]:
    """The receipts of `receipt_ids` that exist, in the order given."""
    if not receipt_ids:
        return []
    rows = conn.execute(select(receipts.c.id, receipts.c.image_sha256, receipts.c.image_size)
                        .where(receipts.c.id.in_(list(receipt_ids))))
    by_id = {row.id: ImageToHash(row.id, row.image_sha256, row.image_size) for row in rows}
    return [by_id[receipt_id] for receipt_id in receipt_ids if receipt_id in by_id]


def receipts_to_hash(conn: Connection, limit: int) -> list[str]:
    """Receipts whose image waits for hashing, oldest first (the partial index on the flag)."""
    query = (select(receipts.c.id).where(receipts.c.hash_pending == true())
             .order_by(receipts.c.id).limit(limit))
    return list(conn.execute(query).scalars())
