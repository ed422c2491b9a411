"""Where an uploaded image waits for its perceptual hashes: a directory, or the database.

The API keeps the upload with its receipt (the receipt row carries hash_pending): rows inside
the receipt's transaction, a file just before it, undone when the receipt does not commit
(`undone_unless_committed`). A background worker loads it, stores the hashes and drops it
unless CHRONOSEAL_KEEP_IMAGES. Uploads are keyed by SHA-256, so the same bytes are kept once.

- `DirectoryUploads`: one file per image under a directory that the API and the hashing workers
  share. The default with SQLite, which already means one host: writing 100 KiB to a file costs
  a fraction of writing it through SQLite's WAL (bench/e2e.py: about 1.2 ms of the API's CPU
  per upload, a third of the whole request), and dropping it later costs no database write.
- `DatabaseUploads`: rows of UPLOAD_CHUNK_BYTES in image_uploads. The default with PostgreSQL,
  where API nodes and workers may share nothing but the database.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import Connection, delete, exists, insert, select
from sqlalchemy.exc import IntegrityError

from service.storage.tables import image_uploads, receipts, utcnow

UPLOAD_FILE_MODE = 0o600  # uploaded images are the submitters': the service's user only
UPLOAD_DIR_MODE = 0o700
UPLOAD_CHUNK_BYTES = 1024 * 1024  # one row (or one write) at a time: bounds memory on both sides
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class UploadStore(Protocol):
    """Keep, load and drop uploaded images by SHA-256 (hex, lower case)."""

    # True: `keep` writes in the caller's transaction (needs its connection); False: `keep`
    # writes outside any transaction (conn may be None) and `forget` undoes it.
    transactional: bool

    def keep(self, conn: Connection | None, image_sha256: str,
             source: bytes | BinaryIO) -> bool:
        """Keep the bytes unless these are kept already; True when this call stored them."""

    def forget(self, image_sha256: str) -> None:
        """Undo a `keep` whose transaction did not commit (the database undoes its own)."""

    def load(self, conn: Connection, image_sha256: str) -> bytes | None:
        """The kept bytes, or None when they were never kept or already dropped."""

    def drop(self, conn: Connection, image_sha256: str) -> None:
        """Forget the kept bytes (their hashes are stored)."""

    def remove_orphans(self, conn: Connection, older_than_s: float,
                       subdirectory: str | None = None) -> int:
        """Delete kept bytes no receipt refers to, older than `older_than_s`; how many."""


@contextmanager
def undone_unless_committed(uploads: UploadStore) -> Iterator[list[str]]:
    """A list for the digests a registration kept; on any error they are forgotten again.

    Append a digest when `keep` returned True; wrap the receipt's transaction in the block."""
    kept: list[str] = []
    try:
        yield kept
    except BaseException:
        for image_sha256 in kept:  # the receipt did not commit: neither may its image stay
            uploads.forget(image_sha256)
        raise


def _stream(source: bytes | BinaryIO) -> BinaryIO:
    """The bytes from their start: a keep may run again after a rolled-back first attempt."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    source.seek(0)
    return source


class DatabaseUploads:
    """Uploads as image_uploads rows, written in the caller's transaction."""

    transactional = True

    def keep(self, conn: Connection | None, image_sha256: str,
             source: bytes | BinaryIO) -> bool:
        assert conn is not None, "database uploads are written in the receipt's transaction"
        present = conn.execute(select(exists().where(
            image_uploads.c.image_sha256 == image_sha256))).scalar()
        if present:
            return False
        stream = _stream(source)
        now = utcnow()
        try:
            with conn.begin_nested():
                for index, chunk in enumerate(iter(lambda: stream.read(UPLOAD_CHUNK_BYTES), b"")):
                    conn.execute(insert(image_uploads), {
                        "image_sha256": image_sha256, "chunk": index, "data": chunk,
                        "created_at": now})
        except IntegrityError:
            return False  # a concurrent upload of the same bytes kept them first
        return True

    def forget(self, image_sha256: str) -> None:
        """Nothing to do: the rows were part of the transaction that rolled back."""

    def load(self, conn: Connection, image_sha256: str) -> bytes | None:
        chunks = conn.execute(select(image_uploads.c.data).where(
            image_uploads.c.image_sha256 == image_sha256).order_by(image_uploads.c.chunk))
        data = b"".join(bytes(chunk) for chunk in chunks.scalars())
        return data or None

    def drop(self, conn: Connection, image_sha256: str) -> None:
        conn.execute(delete(image_uploads).where(image_uploads.c.image_sha256 == image_sha256))

    def remove_orphans(self, conn: Connection, older_than_s: float,
                       subdirectory: str | None = None) -> int:
        """None can exist: rows commit or roll back with their receipt."""
        return 0


def _private(path: str, flags: int) -> int:
    """open()'s opener: a new upload file readable by the service's user only."""
    return os.open(path, flags, UPLOAD_FILE_MODE)


class DirectoryUploads:
    """Uploads as files `<root>/<first two hex digits>/<sha256>`, written atomically.

    A file appears under its final name only complete (written to a temporary name, then
    renamed), so a reader never sees half an image. It is written before the receipt commits:
    a crash in between leaves an orphan file, never a receipt whose image is missing.
    """

    transactional = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[str] = set()  # subdirectories known to exist (saves a mkdir per keep)

    def path(self, image_sha256: str) -> Path:
        return Path(self._name(image_sha256))

    def _name(self, image_sha256: str) -> str:
        if not _SHA256_HEX.fullmatch(image_sha256):
            raise ValueError("not a lower-case hex SHA-256")  # never a path from outside
        return os.path.join(self.root, image_sha256[:2], image_sha256)

    def keep(self, conn: Connection | None, image_sha256: str,
             source: bytes | BinaryIO) -> bool:
        target = self._name(image_sha256)
        if os.path.exists(target):
            return False
        directory = os.path.dirname(target)
        if directory not in self._made:
            os.makedirs(directory, UPLOAD_DIR_MODE, exist_ok=True)
            self._made.add(directory)
        # Unique per process and thread, so no two writers share a temporary file.
        temporary = f"{target}.part-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(temporary, "wb", opener=_private) as out:
                shutil.copyfileobj(_stream(source), out, UPLOAD_CHUNK_BYTES)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return True

    def forget(self, image_sha256: str) -> None:
        self.path(image_sha256).unlink(missing_ok=True)

    def load(self, conn: Connection, image_sha256: str) -> bytes | None:
        try:
            return self.path(image_sha256).read_bytes() or None
        except FileNotFoundError:
            return None

    def drop(self, conn: Connection, image_sha256: str) -> None:
        self.path(image_sha256).unlink(missing_ok=True)

    def remove_orphans(self, conn: Connection, older_than_s: float,
                       subdirectory: str | None = None) -> int:
        """Delete files of one subdirectory (random unless given) that no receipt refers to,
        and temporary files left by a killed writer, once older than `older_than_s`.

        A file is written before its receipt commits, so a process killed in between leaves
        one behind. One subdirectory in 256 per call keeps a sweep cheap however many images
        are kept (CHRONOSEAL_KEEP_IMAGES); the age keeps uploads whose receipt is committing.
        """
        name = subdirectory or f"{secrets.randbelow(256):02x}"
        directory = os.path.join(self.root, name)
        cutoff = time.time() - older_than_s
        removed = 0
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.stat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue  # dropped meanwhile
            stem = entry.name.split(".part-", 1)[0]
            orphan = ".part-" in entry.name or not conn.execute(select(exists().where(
                receipts.c.image_sha256 == stem))).scalar()
            if orphan:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                removed += 1
        return removed


def upload_store(uploads_dir: str, data_path: Path, database: str) -> UploadStore:
    """The store the settings ask for: a directory path, "database", or "" (with SQLite a
    directory in the data dir; with any other `database` dialect, the database)."""
    if uploads_dir == "database":
        return DatabaseUploads()
    if uploads_dir:
        return DirectoryUploads(Path(uploads_dir).resolve())
    if database == "sqlite":
        return DirectoryUploads(data_path / "uploads")
    return DatabaseUploads()
