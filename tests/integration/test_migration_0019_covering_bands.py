"""Migration 0019: every band index becomes (bandN, phash) on both databases, and downgrade
restores the single-column band indexes."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from service.storage import make_engine, upgrade
from service.storage.migrate import alembic_config
from service.storage.tables import PHASH_BANDS


def _band_indexes(engine: object) -> dict[str, list[str]]:
    found = inspect(engine).get_indexes("perceptual_hashes")
    return {ix["name"]: ix["column_names"] for ix in found  # type: ignore[misc]
            if ix["column_names"][0].startswith("band")}


def test_band_indexes_cover_the_phash_and_downgrade_restores_them(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        covering = {f"ix_perceptual_hashes_band{i}_phash": [f"band{i}", "phash"]
                    for i in range(PHASH_BANDS)}
        assert _band_indexes(engine) == covering
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0018")
        assert _band_indexes(engine) == {f"ix_perceptual_hashes_band{i}": [f"band{i}"]
                                         for i in range(PHASH_BANDS)}
        upgrade(engine)
        assert _band_indexes(engine) == covering
    finally:
        engine.dispose()
