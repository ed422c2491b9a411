"""Where uploads wait for hashing: both stores keep once per image, load, drop and undo, and the
hash_pending work list (migration 0006) on both databases."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, select

from service.storage import make_engine, upgrade
from service.storage.migrate import alembic_config
from service.storage.perceptual import receipts_to_hash, store_hashes
from service.storage.tables import image_uploads, receipts
from service.storage.uploads import (
    UPLOAD_CHUNK_BYTES,
    DatabaseUploads,
    DirectoryUploads,
    UploadStore,
    upload_store,
)

SHA_A, SHA_B = "ab" * 32, "cd" * 32


@pytest.fixture(params=["directory", "database"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> UploadStore:
    if request.param == "directory":
        return DirectoryUploads(tmp_path / "uploads")
    return DatabaseUploads()


def test_an_upload_is_kept_once_per_image(db_engine: Engine, store: UploadStore) -> None:
    with db_engine.begin() as conn:
        assert store.keep(conn, SHA_A, b"first")
        assert not store.keep(conn, SHA_A, b"second")  # same digest: the first bytes stay
    with db_engine.connect() as conn:
        assert store.load(conn, SHA_A) == b"first"
        assert store.load(conn, SHA_B) is None
    with db_engine.begin() as conn:
        store.drop(conn, SHA_A)
    with db_engine.connect() as conn:
        assert store.load(conn, SHA_A) is None


def test_a_stream_larger_than_a_chunk_is_kept_whole(db_engine: Engine,
                                                    store: UploadStore) -> None:
    data = bytes(range(256)) * (UPLOAD_CHUNK_BYTES // 256 * 2 + 7)
    with db_engine.begin() as conn:
        store.keep(conn, SHA_A, io.BytesIO(data))
    with db_engine.connect() as conn:
        assert store.load(conn, SHA_A) == data


def test_a_rolled_back_keep_leaves_nothing(db_engine: Engine, store: UploadStore) -> None:
    with pytest.raises(RuntimeError), db_engine.begin() as conn:
        assert store.keep(conn, SHA_A, b"bytes")
        try:
            raise RuntimeError("the receipt's commit failed")
        except RuntimeError:
            store.forget(SHA_A)  # what the API does when its transaction fails
            raise
    with db_engine.connect() as conn:
        assert store.load(conn, SHA_A) is None


def test_files_appear_complete_under_a_name_that_is_the_digest(tmp_path: Path,
                                                               db_engine: Engine) -> None:
    store = DirectoryUploads(tmp_path / "uploads")
    with db_engine.connect() as conn:
        store.keep(conn, SHA_A, b"bytes")
        with pytest.raises(ValueError):
            store.keep(conn, "../../etc/passwd", b"x")  # never a path from outside
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "uploads").rglob("*"))
    assert files == [Path("uploads/ab"), Path("uploads/ab") / SHA_A]  # no .part- file left


def test_the_default_store_follows_the_database(tmp_path: Path) -> None:
    on_sqlite = upload_store("", tmp_path, "sqlite")
    assert isinstance(on_sqlite, DirectoryUploads) and on_sqlite.root == tmp_path / "uploads"
    assert isinstance(upload_store("", tmp_path, "postgresql"), DatabaseUploads)
    assert isinstance(upload_store("database", tmp_path, "sqlite"), DatabaseUploads)
    chosen = upload_store(str(tmp_path / "shared"), tmp_path, "postgresql")
    assert isinstance(chosen, DirectoryUploads) and chosen.root == tmp_path / "shared"


def test_the_work_list_is_the_hash_pending_flag(
        db_engine: Engine, make_receipt: Callable[..., Any]) -> None:
    first = make_receipt(hash_pending=True)
    make_receipt()  # a digest-only receipt: nothing to hash
    second = make_receipt(hash_pending=True)
    with db_engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == [first.id, second.id]
        assert receipts_to_hash(conn, 1) == [first.id]
    with db_engine.begin() as conn:
        store_hashes(conn, first.id, [])  # an image that gave no hashes is done too
    with db_engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == [second.id]


def test_migration_0006_puts_uploads_kept_earlier_on_the_work_list(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO api_keys (id, name, prefix, key_hash, created_at) "
                "VALUES ('key_1', 'k', 'cs_x', 'h', CURRENT_TIMESTAMP)")
            for rid, size in (("rcp_kept", 5), ("rcp_hashonly", None)):
                conn.execute(receipts.insert().values(
                    id=rid, api_key_id="key_1", status="pending", image_sha256=SHA_A,
                    image_size=size, manifest_jcs=b"{}",
                    manifest_digest=hashlib.sha256(rid.encode()).hexdigest(),
                    created_at=_now()))
            conn.execute(image_uploads.insert().values(
                image_sha256=SHA_A, chunk=0, data=b"bytes", created_at=_now()))
        upgrade(engine)
        with engine.connect() as conn:
            pending = dict(conn.execute(select(receipts.c.id, receipts.c.hash_pending)).all())
        assert pending == {"rcp_kept": True, "rcp_hashonly": False}
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005")
    finally:
        engine.dispose()


def _now() -> Any:
    from service.storage.tables import utcnow

    return utcnow()


def test_orphan_files_are_removed_once_old(
        tmp_path: Path, db_engine: Engine, make_receipt: Callable[..., Any]) -> None:
    store = DirectoryUploads(tmp_path / "uploads")
    with_receipt = make_receipt(hash_pending=True)  # its image waits for hashing: kept
    orphan, young = "ab" + "0" * 62, "ab" + "1" * 62
    with db_engine.connect() as conn:
        for sha in (with_receipt.image_sha256, orphan, young):
            store.keep(conn, sha, b"bytes")
    sub = tmp_path / "uploads" / "ab"
    if with_receipt.image_sha256[:2] != "ab":  # put it in the swept subdirectory too
        target = sub / with_receipt.image_sha256
        (tmp_path / "uploads" / with_receipt.image_sha256[:2] / with_receipt.image_sha256
         ).rename(target)
    leftover = sub / f"{orphan}.part-1-2"  # a writer killed mid-file
    leftover.write_bytes(b"half")
    old = time.time() - 7200
    for path in (sub / with_receipt.image_sha256, sub / orphan, leftover):
        os.utime(path, (old, old))
    with db_engine.connect() as conn:
        assert store.remove_orphans(conn, 3600, subdirectory="ab") == 2
    assert sorted(p.name for p in sub.iterdir()) == sorted([with_receipt.image_sha256, young])
    assert DatabaseUploads().remove_orphans(None, 0) == 0  # type: ignore[arg-type]
