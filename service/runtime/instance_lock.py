"""One `chronoseal up` per data directory: an flock on `up.lock`, which names the holder.

A second start on the same data dir must say where the first one runs and stop before it
touches anything (probing ports instead found the first instance's TSA and API "up", then
failed on the port). flock is released by the kernel when the holder dies, however it dies, so
a lock left by a killed `up` never blocks the next start; the file's contents (pid, address)
are only what the refusal says.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from service.errors import ConfigError

LOCK_FILE = "up.lock"
MAX_LOCK_BYTES = 4096  # pid and an address; anything longer is not ours to show


class InstanceLock:
    """The held lock on `path`; `release()` (or the process's end) lets the next start in."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def acquire(data_dir: Path, address: str) -> InstanceLock:
    """Take the data dir's lock and write our pid and `address` into it; ConfigError naming the
    running instance's address and pid when another process holds it."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ConfigError(f"already running on {holder.get('address', 'an unknown address')} "
                          f"(pid {holder.get('pid', '?')}, lock {path})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "address": address}).encode(), 0)
    return InstanceLock(path, fd)


def _holder(fd: int) -> dict[str, object]:
    try:
        body = json.loads(os.pread(fd, MAX_LOCK_BYTES, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
