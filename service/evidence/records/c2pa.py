"""C2PA: the manifest store read and validated by c2pa-python (the CAI's own SDK), recorded as
C2PA reports it: a manifest that fails validation is recorded as failing, never as valid.

What is kept (provenance["c2pa"]): the active manifest's label, claim generator, signer and
issuer, the validation state and what it says of the claim signature, the hard binding to these
exact bytes and the signature's own timestamp, its c2pa.actions (with digitalSourceType) and its
ingredients. The containers' walk (png/jpeg/webp.py) finds the store first: only a file that
carries one, of at most MAX_C2PA_BYTES, is handed to the SDK, so its memory is bounded by that
store plus the file being hashed in chunks. The SDK runs in a thread waited for READ_TIMEOUT_S
at most (c2pa_sdk.run_bounded: an overrunning read is abandoned, a bounded number run at once).
Nothing is fetched: remote manifests and OCSP are off and no network host is allowed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Any, BinaryIO

from service.evidence.c2pa_sdk import SdkTimeoutError, run_bounded, sdk_context
from service.evidence.credentials.definition import REGISTRATION_LABEL
from service.evidence.records.record import C2PA
from service.evidence.records.sources import Found, Reader, Sources
from service.evidence.records.validation import read_validation

READ_TIMEOUT_S = 5.0  # a store of a few manifests validates in milliseconds (bench/c2pa_read.py)
MAX_MANIFEST_MB = 8  # decompressed store the SDK may inflate (its own bound)
MAX_TEXT_CHARS = 512  # a generator, signer or title is a name and a version
MAX_ACTIONS = 32  # actions kept from the active manifest; real ones list a handful
MAX_INGREDIENTS = 16  # ingredients kept; an edit names one or a few
ACTION_KEYS = ("action", "softwareAgent", "digitalSourceType", "when")
SIGNER_KEYS = ("issuer", "common_name", "alg", "time", "cert_serial_number")
UNREADABLE = "the C2PA manifest store could not be read or validated; registered without it"
TIMED_OUT = f"the C2PA manifest store was not validated within {READ_TIMEOUT_S:g} s; skipped"
MEDIA_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8": "image/jpeg", b"RIFF": "image/webp"}
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
    head = fileobj.read(12)
    fileobj.seek(0)
    if head[:4] == b"RIFF" and head[8:12] != b"WEBP":
        return None
    return next((t for magic, t in MEDIA_TYPES.items() if head.startswith(magic)), None)


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


def facts_of(report: dict[str, Any]) -> dict[str, Any]:
    """The recorded facts from the SDK's manifest-store report (its `Reader.json()`)."""
    manifests = report.get("manifests") or {}
    label = report.get("active_manifest")
    active = manifests.get(label) if isinstance(label, str) else None
    out: dict[str, Any] = {"manifests": len(manifests)}
    if not isinstance(active, dict):
        out["validation"] = read_validation(report)
        return out
    out["active_manifest"] = _text(label)
    out.update(_generator(active))
    signer = active.get("signature_info")
    if isinstance(signer, dict):
        out["signer"] = {k: _text(signer[k]) for k in SIGNER_KEYS if signer.get(k) is not None}
    out["validation"] = read_validation(report)
    actions = [_action(a) for a in _actions(active)]
    if actions:
        out["actions"] = actions[:MAX_ACTIONS]
    link = _chronoseal_link(active)
    if link:
        out["chronoseal_registration"] = link
    ingredients = [_ingredient(i, manifests) for i in (active.get("ingredients") or [])
                   if isinstance(i, dict)][:MAX_INGREDIENTS]
    if ingredients:
        out["ingredients"] = ingredients
    return out


def _text(value: Any) -> str:
    return str(value)[:MAX_TEXT_CHARS]


def _generator(manifest: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    info = manifest.get("claim_generator_info")
    first = info[0] if isinstance(info, list) and info else info
    generator = manifest.get("claim_generator")
    if not isinstance(generator, str) and isinstance(first, dict):
        name, version = first.get("name"), first.get("version")
        generator = f"{name} {version}" if name and version else name
    if isinstance(generator, str):
        out["claim_generator"] = _text(generator)
    if isinstance(first, dict):
        out["claim_generator_info"] = {k: _text(v) for k, v in first.items()
                                       if k in ("name", "version") and v is not None}
    return out


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict):
            continue
        if str(assertion.get("label", "")).split("__")[0] in ("c2pa.actions", "c2pa.actions.v2"):
            data = assertion.get("data")
            items = data.get("actions") if isinstance(data, dict) else None
            found.extend(a for a in (items or [])[:MAX_ACTIONS] if isinstance(a, dict))
    return found


def _chronoseal_link(manifest: dict[str, Any]) -> dict[str, str]:
    """A Chronoseal copy's manifest names the registration it is a copy of: recorded, so the
    copy's own receipt links to the original's (issue 17)."""
    for assertion in manifest.get("assertions") or []:
        data = assertion.get("data") if isinstance(assertion, dict) else None
        if assertion.get("label") == REGISTRATION_LABEL and isinstance(data, dict):
            return {k: _text(data[k]) for k in ("receipt_id", "manifest_digest")
                    if isinstance(data.get(k), str)}
    return {}


def _action(action: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ACTION_KEYS:
        value = action.get(key)
        if isinstance(value, dict):  # softwareAgent as claim_generator_info (actions v2)
            value = value.get("name")
        if isinstance(value, str):
            out[key] = _text(value)
    return out


def _ingredient(ingredient: dict[str, Any], manifests: dict[str, Any]) -> dict[str, Any]:
    out = {k: _text(ingredient[k]) for k in ("title", "format", "relationship", "active_manifest")
           if isinstance(ingredient.get(k), str)}
    own = manifests.get(str(ingredient.get("active_manifest")))
    if isinstance(own, dict):
        out.update(_generator(own))
    return out


def read(src: Sources) -> Found | None:
    return Found(C2PA, {}, {}) if src.c2pa else None


READER = Reader("c2pa", 10, read, fallback=True)
