"""Migration 0015: the stored views' bands become three of 22/21/21 bits, recomputed in SQL from
the stored pHash (no image decoded), and the index then finds them; downgrade restores the four
16-bit bands."""

from __future__ import annotations

import hashlib
import random

from alembic import command
from sqlalchemy import text

from service.storage import create_api_key, make_engine, upgrade, write_transaction
from service.storage.migrate import alembic_config
from service.storage.perceptual import bands, find_candidates, store_hashes
from service.storage.receipts import insert_receipt

ROWS = 40
RNG_SEED = 15
UNSIGNED = 0xFFFF_FFFF_FFFF_FFFF


def test_bands_are_recomputed_from_the_stored_phash_both_ways(empty_db_url: str) -> None:
    rng = random.Random(RNG_SEED)
    phashes = [rng.getrandbits(63) | (1 << 63) * (i % 2) for i in range(ROWS)]  # half negative
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        with write_transaction(engine) as conn:
            key, _ = create_api_key(conn, "m")
            ids = []
            for i, phash in enumerate(phashes):
                manifest = b'{"n":%d}' % i
                receipt = insert_receipt(
                    conn, api_key_id=key.id, manifest_jcs=manifest,
                    image_sha256=hashlib.sha256(manifest + b"image").hexdigest(),
                    manifest_digest=hashlib.sha256(manifest).hexdigest())
                store_hashes(conn, receipt.id, [(0, phash, 0)])
                ids.append(receipt.id)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0013")
        with engine.connect() as conn:
            old = conn.execute(text(
                "SELECT phash, band0, band1, band2, band3 FROM perceptual_hashes")).all()
        assert len(old) == ROWS
        for row in old:
            assert list(row[1:]) == [((row[0] & UNSIGNED) >> (16 * (3 - b))) & 0xFFFF
                                     for b in range(4)]
        upgrade(engine)
        with engine.connect() as conn:
            new = conn.execute(text("SELECT phash, band0, band1, band2 FROM perceptual_hashes"))
            assert all(list(row[1:]) == bands(row[0] & UNSIGNED) for row in new)
            found = find_candidates(conn, [phashes[7] ^ 1], max_distance=1)
        assert [v.receipt_id for v in found.views] == [ids[7]]
    finally:
        engine.dispose()
