"""C2PA: the manifest store read and validated by c2pa-python (the CAI's own SDK), recorded as
C2PA reports it: a manifest that fails validation is recorded as failing, never as valid.

What is kept (provenance["c2pa"], c2pa_facts.py): the active manifest's label, claim generator,
signer and issuer, the validation state and what it says of the claim signature, the hard
binding to these exact bytes and the signature's own timestamp, its c2pa.actions (with
digitalSourceType) and its ingredients. The containers' walk (png/jpeg/webp.py) finds the store
first: only a file that carries one, of at most MAX_C2PA_BYTES, is handed to the SDK, so its
memory is bounded by that store plus the file being hashed in chunks. The SDK runs in a thread
waited for READ_TIMEOUT_S at most (c2pa_sdk.run_bounded: an overrunning read is abandoned, a
bounded number run at once).
Nothing is fetched: remote manifests and OCSP are off and no network host is allowed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Any, BinaryIO

from service.evidence.c2pa_sdk import SDK_MEDIA_TYPES, SdkTimeoutError, run_bounded, sdk_context
from service.evidence.hashing import sniff_media_type
from service.evidence.records.c2pa_facts import facts_of
from service.evidence.records.record import C2PA
from service.evidence.records.sources import Found, Reader, Sources

READ_TIMEOUT_S = 5.0  # a store of a few manifests validates in milliseconds (bench/c2pa_read.py)
MAX_MANIFEST_MB = 8  # decompressed store the SDK may inflate (its own bound)
UNREADABLE = "the C2PA manifest store could not be read or validated; registered without it"
TIMED_OUT = f"the C2PA manifest store was not validated within {READ_TIMEOUT_S:g} s; skipped"
# Reading never reaches the network: a store that points elsewhere is reported, not fetched.
READ_SETTINGS = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    "core": {"allowed_network_hosts": [], "max_decompressed_manifest_size_in_mb": MAX_MANIFEST_MB},
}

log = logging.getLogger(__name__)


def read_c2pa(fileobj: BinaryIO, warnings: list[str],
              trust_anchors_pem: str | None = None) -> dict[str, Any]:
    """{"present": True, ...}: the facts of the file's active manifest and their validation
    (only "present" when the store cannot be read; the reason goes to `warnings`).
    `trust_anchors_pem` adds roots to trust (validation "Trusted" when the signer chains)."""
    media_type = _media_type(fileobj)
    if media_type is None:
        return {"present": True}
    source = _own_handle(fileobj)

    def call() -> dict[str, Any]:
        with source:
            return _report(media_type, source, trust_anchors_pem)

    try:
        report = run_bounded(call, READ_TIMEOUT_S)
    except SdkTimeoutError:
        warnings.append(TIMED_OUT)
        return {"present": True}
    except Exception:  # c2pa.C2paError and anything the SDK raises on bad bytes
        log.debug("C2PA store unreadable", exc_info=True)
        warnings.append(UNREADABLE)
        return {"present": True}
    return {"present": True, **facts_of(report)}


def _media_type(fileobj: BinaryIO) -> str | None:
    fileobj.seek(0)
    head = fileobj.read(16)
    fileobj.seek(0)
    found = sniff_media_type(head)
    return found if found in SDK_MEDIA_TYPES else None


def _own_handle(fileobj: BinaryIO) -> BinaryIO:
    """A handle with its own position, valid after the caller's is closed: the SDK's thread may
    outlive the call. A real file is opened again (no copy); an in-memory one is copied (it is
    in memory because it is small: register.SPOOL_MEMORY_BYTES)."""
    # A SpooledTemporaryFile's fileno() would move it to disk: look at what it holds instead.
    inner = getattr(fileobj, "_file", fileobj)
    if not isinstance(inner, io.BytesIO):
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation, AttributeError):
            return open(f"/proc/self/fd/{inner.fileno()}", "rb")  # noqa: SIM115
    fileobj.seek(0)
    data = fileobj.read()
    fileobj.seek(0)
    return io.BytesIO(data)


def _report(media_type: str, source: BinaryIO, trust_anchors_pem: str | None) -> dict[str, Any]:
    import c2pa  # the SDK loads a 23 MB native library: only when a file carries a store

    settings: dict[str, Any] = json.loads(json.dumps(READ_SETTINGS))
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    with c2pa.Reader(media_type, source, context=sdk_context(settings)) as reader:
        report: dict[str, Any] = json.loads(reader.json())
        report["validation_state"] = reader.get_validation_state()
    return report


def read(src: Sources) -> Found | None:
    return Found(C2PA, {}, {}) if src.c2pa else None


READER = Reader("c2pa", 10, read, fallback=True)
