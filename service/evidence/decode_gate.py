"""A per-process budget of decoded pixels: how many images may be decoded at once, by size.

Decoding holds the whole image in memory (Pillow cannot decode a PNG in strips), so what bounds
a process's memory is the sum of the pixels being decoded, not the number of requests. Each
decode asks for its pixel count; it waits while the budget is spent, and gives up with
DecodeBusyError (503 with Retry-After in the API) when its turn does not come in time. An image
larger than the whole budget is admitted only while nothing else is decoded, so one maximal
image at a time still works.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import DecodeBusyError

# 32 megapixels held at once: at the at most 6 bytes per pixel a decode holds (4 for the decoded
# RGB(A), 1 for its grey copy, 1 more for a rotated copy), under 200 MB above a process's own
# ~100 MB, so an API process stays under 300 MiB; small images still decode side by side.
DECODE_BUDGET_PIXELS = 32_000_000
# A decode that waited this long gives up: a 25-megapixel PNG decodes in about half a second, so
# this is a queue of about twenty of them, and the client is better told to come back.
DECODE_WAIT_S = 10.0
RETRY_AFTER_S = 2  # about the time the queue ahead needs to drain by half


class DecodeGate:
    """Admit decodes while their pixels fit the budget; FIFO is not promised, a bound is."""

    def __init__(self, budget_pixels: int, wait_s: float) -> None:
        self.budget = budget_pixels
        self.wait_s = wait_s
        self._in_use = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        with self._changed:
            return self._in_use

    @contextmanager
    def slot(self, pixels: int) -> Iterator[None]:
        """Hold `pixels` of the budget for the block; DecodeBusyError when none came in time."""
        deadline = time.monotonic() + self.wait_s
        with self._changed:
            while self._in_use and self._in_use + pixels > self.budget:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DecodeBusyError(RETRY_AFTER_S)
                self._changed.wait(left)
            self._in_use += pixels
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= pixels
                self._changed.notify_all()


# One per process: the budget bounds the process's memory, whichever thread decodes.
GATE = DecodeGate(DECODE_BUDGET_PIXELS, DECODE_WAIT_S)
