"""The watcher's local state file (SQLite): what was registered, what is still to do, sessions.

A row per image path goes `queued` (hashed; its Idempotency-Key and session fixed) ->
`pending` (the server answered with a receipt id) -> `stamped` (bundle written), or `failed`.
Each step is committed before the next request, so a watcher stopped at any point starts again
where it was: a queued row is sent again with the same key (the server answers with the same
receipt), a pending one is polled. A lock file keeps a second watcher off the same state.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.errors import ChronosealError

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    session TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    receipt_id TEXT,
    bundle TEXT,
    detail TEXT NOT NULL DEFAULT '',
    resubmits INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    folder TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    last_at REAL NOT NULL
);
"""
UNFINISHED = ("queued", "pending")


class StateLockedError(ChronosealError):
    """Another watcher holds this state file."""


@dataclass(frozen=True)
class Entry:
    """One image as the state file knows it."""

    path: Path
    size: int
    mtime_ns: int
    sha256: str
    status: str
    metadata: str  # the record to send, as JSON (read when hashed: the file may go later)
    session: str
    idempotency_key: str
    receipt_id: str | None
    bundle: str | None
    detail: str
    resubmits: int


class WatchState:
    """The state file, opened once by the watcher (one thread uses it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise StateLockedError(f"another watcher is using {path}") from exc
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: a row per step
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()
        os.close(self._lock_fd)  # releases the lock

    def get(self, path: Path) -> Entry | None:
        row = self._db.execute(_SELECT + "WHERE path = ?", (str(path),)).fetchone()
        return _entry(row) if row else None

    def unfinished(self) -> list[Entry]:
        rows = self._db.execute(_SELECT + "WHERE status IN (?, ?) ORDER BY rowid",
                                UNFINISHED).fetchall()
        return [_entry(r) for r in rows]

    def queue(self, path: Path, size: int, mtime_ns: int, sha256: str, metadata: str,
              session: str, idempotency_key: str) -> Entry:
        """A hashed image, to be registered (replacing what an older version of it left)."""
        self._db.execute(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, status, metadata, "
            "session, idempotency_key) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
            (str(path), size, mtime_ns, sha256, metadata, session, idempotency_key))
        entry = self.get(path)
        assert entry is not None
        return entry

    def accepted(self, path: Path, receipt_id: str) -> None:
        self._set(path, status="pending", receipt_id=receipt_id)

    def stamped(self, path: Path, bundle: Path) -> None:
        self._set(path, status="stamped", bundle=str(bundle), detail="")

    def failed(self, path: Path, detail: str) -> None:
        self._set(path, status="failed", detail=detail)

    def resubmit(self, path: Path, idempotency_key: str, detail: str) -> None:
        """Its receipt failed on the server: register it again, under a new key."""
        self._db.execute("UPDATE files SET status = 'queued', receipt_id = NULL, "
                         "idempotency_key = ?, detail = ?, resubmits = resubmits + 1 "
                         "WHERE path = ?", (idempotency_key, detail, str(path)))

    def session_for(self, folder: Path, now: float, pause_s: float) -> str:
        """The folder's session, or a new one when it was idle for longer than `pause_s`."""
        row = self._db.execute("SELECT id, last_at FROM sessions WHERE folder = ?",
                               (str(folder),)).fetchone()
        session = row[0] if row and now - row[1] <= pause_s else str(uuid.uuid4())
        self._db.execute("INSERT OR REPLACE INTO sessions (folder, id, last_at) VALUES (?, ?, ?)",
                         (str(folder), session, now))
        return str(session)

    def _set(self, path: Path, **values: str) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)  # names are ours, not input
        self._db.execute(f"UPDATE files SET {assignments} WHERE path = ?",  # noqa: S608
                         (*values.values(), str(path)))


_SELECT = ("SELECT path, size, mtime_ns, sha256, status, metadata, session, idempotency_key, "
           "receipt_id, bundle, detail, resubmits FROM files ")  # Entry's fields, in order


def _entry(row: Any) -> Entry:
    return Entry(Path(row[0]), *row[1:])  # the columns of _SELECT
