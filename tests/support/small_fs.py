"""A small file system the test can fill: tmpfs mounted with a size (the machine's root user).

CI runs as root on the same kind of machine, so there a failed mount is an error; elsewhere the
test is skipped with the reason, loudly.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILL_CHUNK = 256 * 1024  # written until the file system says no more


@contextmanager
def small_filesystem(path: Path, size_bytes: int) -> Iterator[Path]:
    """Mount a tmpfs of `size_bytes` at `path` (made if missing) for the block."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs",
                              str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs at {path}: {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(f"SKIPPED LOUDLY: {reason} (needs root)")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in `directory` until its file system has no byte left; the file."""
    target = directory / name
    chunk = b"\0" * FILL_CHUNK
    with target.open("ab", buffering=0) as out:  # unbuffered: each write reaches the disk
        for size in (FILL_CHUNK, 4096, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    with contextlib.suppress(OSError):
        os.sync()
    return target
