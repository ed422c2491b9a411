"""is_disk_full: what SQLite and the OS raise when a small file system is full, recognised."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from service.storage.engine import is_disk_full, make_engine
from tests.support.small_fs import fill, small_filesystem

SMALL_FS_BYTES = 2 * 1024 * 1024


def test_sqlite_on_a_full_disk_is_disk_full(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", SMALL_FS_BYTES) as path:
        engine = make_engine(f"sqlite:///{path / 'full.db'}")
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE t (b BLOB)")
            fill(path)
            with pytest.raises(SQLAlchemyError) as raised, engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (zeroblob(1000000))")
            assert is_disk_full(raised.value), raised.value
        finally:
            engine.dispose()


def test_a_file_write_on_a_full_disk_is_disk_full(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", SMALL_FS_BYTES) as path:
        fill(path)
        with pytest.raises(OSError) as raised, (path / "more").open("wb", buffering=0) as out:
            out.write(b"x" * 65536)
        assert is_disk_full(raised.value)


def test_other_errors_are_not_disk_full(tmp_path: Path) -> None:
    assert not is_disk_full(OSError(errno.EACCES, "denied"))
    engine = make_engine(f"sqlite:///{tmp_path / 'ok.db'}")
    with pytest.raises(SQLAlchemyError) as raised, engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM missing")
    assert not is_disk_full(raised.value)
    engine.dispose()
