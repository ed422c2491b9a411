"""Give freed image memory back to the system: glibc malloc settings for processes that decode.

A decoded image is allocated by Pillow in blocks of up to 16 MiB. glibc serves such blocks with
mmap and unmaps them when freed, but after the first such free it raises its mmap threshold to
that size, so later blocks come from the heap, where freed memory stays with the process
(measured: an API process that decoded 16 large images at once kept 1.6 GiB afterwards). A
fixed threshold turns that adjustment off: large blocks are always mapped and always returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from glibc's malloc.h
# Allocations from 1 MiB up are mapped on their own (a 1000-pixel row of RGBA is 4 KB, so only
# image blocks and large buffers get there); fixed, so glibc never moves it up.
MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold for this process and its forks; False where not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    if not done:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused: freed image memory may stay in use")
    return done
