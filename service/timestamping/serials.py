"""Token serial numbers that never repeat: across requests, threads, worker processes, restarts.

serial = generation * 2**COUNTER_BITS + counter. The generation is a counter persisted in the
data dir and bumped under an exclusive flock (read, +1, write atomically, fsync) by every
process the first time it issues a serial, so no two processes — or two lives of one process —
ever hold the same generation. Inside a process a lock-protected counter runs from 1; when it
would overflow, a fresh generation is taken. A fork (gunicorn workers) is detected by pid, so a
generation taken in the master before forking is never shared by its children.
No clock is involved, so a clock stepping backwards cannot repeat a serial.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from service.errors import ConfigError

# 2**48 tokens per generation: at 10k tokens/s a process would need ~900 years to roll over.
COUNTER_BITS = 48
# RFC 3161 (and 5280 for certificates) cap serials at 20 octets; generation stays far below.
MAX_SERIAL_BITS = 159
GENERATION_FILE = "serial-generation"


def bump_generation(data_dir: Path) -> int:
    """Take the next generation number for this process, durably, under an exclusive flock."""
    path = data_dir / GENERATION_FILE
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = int(path.read_text().strip() or "0")
        except FileNotFoundError:
            current = 0
        except ValueError as exc:
            raise ConfigError(f"{path} is corrupt; refusing to guess a serial generation") from exc
        generation = current + 1
        write_atomically(path, f"{generation}\n".encode(), mode=0o600)
        return generation
    finally:
        os.close(fd)  # closing releases the flock


def write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write to a temp file in the same dir, fsync, rename over `path`, fsync the dir.

    A crash leaves either the old or the new file, never a torn one; the temp file is created
    with `mode` from the start, so a private key is never readable by others even briefly.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)  # umask may have narrowed or the file system widened it
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class SerialAllocator:
    """Hands out unique positive serials; safe to share between threads, fork-aware."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._lock = threading.Lock()
        self._pid = -1  # no generation yet: taken lazily, after any fork
        self._generation = 0
        self._counter = 0

    def next(self) -> int:
        """The next serial number (thread-safe)."""
        with self._lock:
            if self._pid != os.getpid() or self._counter >= (1 << COUNTER_BITS) - 1:
                self._generation = bump_generation(self._data_dir)
                self._pid = os.getpid()
                self._counter = 0
            self._counter += 1
            serial = (self._generation << COUNTER_BITS) | self._counter
        if serial.bit_length() > MAX_SERIAL_BITS:
            raise ConfigError("serial generation exhausted; start a new TSA data dir")
        return serial
