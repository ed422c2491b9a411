"""Migration 0020: perceptual_cells, laid out as perceptual_hashes with the same covering
band indexes, on both databases; downgrade drops it and leaves the whole views alone."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from service.storage import make_engine, upgrade
from service.storage.migrate import alembic_config
from service.storage.tables import PHASH_BANDS


def _indexes(engine: object, table: str) -> dict[str, list[str]]:
    return {ix["name"]: ix["column_names"]  # type: ignore[misc]
            for ix in inspect(engine).get_indexes(table)}


def test_cells_get_the_band_indexes_of_the_whole_views(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        assert _indexes(engine, "perceptual_cells") == {
            f"ix_perceptual_cells_band{i}_phash": [f"band{i}", "phash"]
            for i in range(PHASH_BANDS)}
        columns = [c["name"] for c in inspect(engine).get_columns("perceptual_cells")]
        assert columns == [c["name"] for c in inspect(engine).get_columns("perceptual_hashes")]
        whole = _indexes(engine, "perceptual_hashes")
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0019")
        assert "perceptual_cells" not in inspect(engine).get_table_names()
        assert _indexes(engine, "perceptual_hashes") == whole
        upgrade(engine)
        assert "perceptual_cells" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
