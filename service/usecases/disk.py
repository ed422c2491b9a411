"""Room on disk: refuse a registration before the disk fills, and say how much room is left.

A registration writes the upload (DirectoryUploads) and the receipt (SQLite in DATA_DIR), and
stamping it later writes tokens and proofs there too. So a registration is refused with
DiskFullError (507) when it would leave less than settings.disk_reserve_bytes free: what was
accepted can still be stamped. A write that fails for want of space (ENOSPC, SQLite's "database
or disk is full", PostgreSQL's disk_full) is the same error, and its upload is undone with the
receipt. Nothing is latched: once space is freed the next reading lets registrations in again.

Free space is read at most every DISK_CHECK_INTERVAL_S per path (a statvfs on every upload
would be a syscall more on the hot path); bytes accepted since the reading are subtracted.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.errors import DiskFullError
from service.storage.engine import is_disk_full
from service.storage.uploads import DirectoryUploads
from service.wiring import Services

log = logging.getLogger(__name__)

# A reading is reused this long: uploads arriving within it are counted against it, so the
# reserve holds, and freed space is seen within a second.
DISK_CHECK_INTERVAL_S = 1.0
# Space comes back when someone frees it: a client retrying sooner than this only adds load.
RETRY_AFTER_S = 30
OK, LOW, FULL = "ok", "low", "full"


@dataclass
class _Reading:
    read_at: float
    free: int


_readings: dict[Path, _Reading] = {}  # per process: one reading per path
_lock = threading.Lock()


def disk_paths(services: Services) -> list[Path]:
    """Where registrations write: DATA_DIR, and the uploads directory when it is one."""
    paths = [services.settings.data_path]
    uploads = services.uploads
    if isinstance(uploads, DirectoryUploads) and uploads.root not in paths:
        paths.append(uploads.root)
    return paths


def _existing(path: Path) -> Path:
    """`path` or its nearest existing parent (a directory made on first use is not there)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _free(path: Path, now: float) -> _Reading:
    reading = _readings.get(path)
    if reading is None or now - reading.read_at >= DISK_CHECK_INTERVAL_S:
        reading = _Reading(now, shutil.disk_usage(_existing(path)).free)
        _readings[path] = reading
    return reading


def free_bytes(services: Services) -> int:
    """The least free space of the paths registrations write to (as last read)."""
    now = time.monotonic()
    with _lock:
        return min(_free(path, now).free for path in disk_paths(services))


def ensure_room(services: Services, incoming: int) -> None:
    """Raise DiskFullError unless `incoming` bytes leave disk_reserve_bytes free; count them."""
    now, reserve = time.monotonic(), services.settings.disk_reserve_bytes
    with _lock:
        readings = [_free(path, now) for path in disk_paths(services)]
        if any(r.free - incoming < reserve or r.free <= 0 for r in readings):
            raise DiskFullError(RETRY_AFTER_S)
        for reading in readings:
            reading.free -= incoming


@contextmanager
def disk_full_as_error(services: Services) -> Iterator[None]:
    """Turn a write that failed for want of space into DiskFullError, and remember it."""
    try:
        yield
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        log.warning("registration refused: no space left (%s)", exc.__class__.__name__)
        now = time.monotonic()
        with _lock:  # until the next reading, the others are refused without trying
            for path in disk_paths(services):
                _readings[path] = _Reading(now, 0)
        raise DiskFullError(RETRY_AFTER_S) from exc


@dataclass(frozen=True)
class DiskRoom:
    """Free space where registrations write, against the thresholds: ok, low or full."""

    state: str
    free_bytes: int
    min_free_bytes: int
    reserve_bytes: int

    def as_json(self) -> dict[str, object]:
        return {"state": self.state, "free_bytes": self.free_bytes,
                "min_free_bytes": self.min_free_bytes, "reserve_bytes": self.reserve_bytes}


def disk_room(services: Services) -> DiskRoom:
    """Full below the reserve (registrations get 507), low below min_free_disk_bytes."""
    settings = services.settings
    free = free_bytes(services)
    state = (FULL if free <= settings.disk_reserve_bytes or free <= 0
             else LOW if free < settings.min_free_disk_bytes else OK)
    return DiskRoom(state, free, settings.min_free_disk_bytes, settings.disk_reserve_bytes)
