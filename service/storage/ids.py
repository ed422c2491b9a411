"""Identifiers: a type prefix plus a ULID-like body, so ids sort by creation time.

Body: 48-bit milliseconds since the epoch (10 Crockford base32 characters) followed by 80 random
bits (16 characters), as in ULID. Sorting ids sorts receipts oldest first, which keyset
pagination and batch leaf order rely on; the random part makes ids unguessable.
"""

from __future__ import annotations

import secrets
import threading
import time

CROCKFORD_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U: unambiguous when read out
TIME_CHARS = 10  # 50 bits >= 48-bit millisecond clock (good until year 10889)
RANDOM_BITS = 80  # as in ULID: collisions within one millisecond are negligible
RANDOM_CHARS = 16  # 80 bits / 5 bits per character
MONOTONIC_STEP_BITS = 32  # random increment within one millisecond: 2^48 ids before overflow
BODY_LENGTH = TIME_CHARS + RANDOM_CHARS

RECEIPT_PREFIX = "rcp_"
BATCH_PREFIX = "bat_"
API_KEY_PREFIX = "key_"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(CROCKFORD_BASE32[index])
    return "".join(reversed(chars))


_last = (0, 0)  # (millis, randomness) of this process's latest id: ULID's monotonic mode
_last_lock = threading.Lock()


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """A fresh id `prefix + 26 characters`; `now_ms` fixes the time part (tests).

    Within one process ids strictly increase, also within one millisecond (the random part
    grows by a random step, as in ULID's monotonic mode, so the next id is still not
    guessable from the last), and creation order is id order.
    """
    global _last
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _last_lock:
        last_millis, last_random = _last
        step = 1 + secrets.randbits(MONOTONIC_STEP_BITS)
        if now_ms is None and millis <= last_millis and last_random + step < 1 << RANDOM_BITS:
            millis, randomness = last_millis, last_random + step
        else:
            randomness = secrets.randbits(RANDOM_BITS)
        if now_ms is None:
            _last = (millis, randomness)
    return prefix + _encode(millis, TIME_CHARS) + _encode(randomness, RANDOM_CHARS)


def new_receipt_id() -> str:
    """Receipt ids are made before the row when a caller needs one early (logs, manifests)."""
    return new_id(RECEIPT_PREFIX)
