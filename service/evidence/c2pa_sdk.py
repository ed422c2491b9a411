"""Calls into c2pa-python (a Rust library behind ctypes), bounded in time and in number.

A native call cannot be interrupted, so each runs in its own thread that is waited for a
bounded time: one that overruns is abandoned (its result dropped) and keeps its slot until it
ends, so at most MAX_RUNNING_CALLS run at once, overrunning ones included, and they cannot pile
up. Reading (records/c2pa.py) and signing (credentials/embed.py) share these slots.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
SDK_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp")  # what Chronoseal reads and signs
MAX_RUNNING_CALLS = 4  # each holds a manifest store (and, signing, an image) in memory

# Process-wide on purpose: it bounds the SDK's threads in this process, whoever calls.
_slots = threading.BoundedSemaphore(MAX_RUNNING_CALLS)


class SdkTimeoutError(Exception):
    """The call did not finish in time (or found no free slot in that time)."""


def run_bounded(call: Callable[[], T], timeout_s: float) -> T:
    """call() in a thread, waited for `timeout_s`; its exception is raised here."""
    if not _slots.acquire(timeout=timeout_s):
        raise SdkTimeoutError("no free C2PA SDK slot")
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller, who decides
            outcome["error"] = exc
        finally:
            _slots.release()

    worker = threading.Thread(target=run, name="c2pa-sdk", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise SdkTimeoutError(f"the C2PA SDK did not finish within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def sdk_context(settings: dict[str, Any]) -> Any:
    """A c2pa.Context with these settings (the SDK is imported only when first needed: it loads
    a 23 MB native library)."""
    import c2pa

    return c2pa.Context(c2pa.Settings.from_dict(settings))
