"""Content Credentials out: a copy of a registered image carrying a Chronoseal C2PA manifest,
registered itself as a child of the original.

Steps: the owner's receipt, stamped (NotReadyError before), its kept image (ImageNotKeptError
when only a digest was registered or the bytes were dropped); the manifest definition from the
receipt, its proof and tokens; signed and time-stamped (evidence.credentials); then the copy is
registered like an upload, linked to the original (`child_registration`).

The route is a GET, so a second call must not register another copy (RFC 9110 9.2.2: a page or
a crawler following the link would otherwise sign, time-stamp and register one per fetch). The
copy is registered under the idempotency key `c2pa-copy-of:<original>`, and later calls answer
that receipt's kept bytes, the same copy. Only once those bytes are dropped (after hashing,
unless CHRONOSEAL_KEEP_IMAGES; the original's go at the same time) is a new copy signed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from service.errors import ConfigError, IdempotencyConflictError, ImageNotKeptError, NotReadyError
from service.evidence.credentials.definition import (
    RegistrationFacts,
    TokenTime,
    child_metadata,
    manifest_definition,
)
from service.evidence.credentials.embed import MEDIA_TYPES, LocalSigner, embed
from service.evidence.credentials.keys import SigningMaterial, load_existing, load_or_create
from service.evidence.manifest import format_timestamp
from service.settings import Settings
from service.storage.receipts import Receipt, receipt_by_idempotency_key
from service.timestamping.tsa_config import TSAConfig
from service.usecases.lineage import Lineage
from service.usecases.receipts import own_receipt, proof_json, tokens_of
from service.usecases.register import (
    Registered,
    Registration,
    SpooledImage,
    register,
    spool_image,
)
from service.usecases.signals import Signals
from service.usecases.stamp import load_enabled_tsas
from service.webhooks.events import receipt_links
from service.wiring import Services

__all__ = ["Credentialed", "LocalSigner", "child_registration", "claim_tsa", "content_credentials",
           "local_signer", "signing_material"]


@dataclass(frozen=True)
class Credentialed:
    """The signed copy, its media type, and the copy's own receipt (a child of `parent_id`)."""

    image: bytes
    media_type: str
    parent_id: str
    child: Registered


def signing_material(services: Services) -> SigningMaterial:
    """Chronoseal's C2PA signing key and certificate (made at `serve` start in the data dir)."""
    return load_or_create(services.settings.data_path)


def content_credentials(services: Services, signals: Signals, receipt_id: str, owner: str,
                        base_url: str) -> Credentialed:
    """Sign a copy of the owner's stamped receipt's image and register it as its child.
    `base_url` prefixes the bundle's path in the manifest (the API's address as called)."""
    receipt = own_receipt(services, receipt_id, owner)
    tokens = tokens_of(services, receipt)
    proof = proof_json(receipt)
    if receipt.status != "stamped" or proof is None or not tokens:
        raise NotReadyError(f"The receipt is {receipt.status}", receipt.status)
    if receipt.media_type not in MEDIA_TYPES:
        raise ImageNotKeptError("only a digest was registered: there is no image to embed in")
    earlier = _earlier_copy(services, receipt)
    if earlier is not None:
        return earlier
    with services.engine.connect() as conn:
        image = services.uploads.load(conn, receipt.image_sha256)
    if image is None:
        raise ImageNotKeptError("the image was dropped after hashing (CHRONOSEAL_KEEP_IMAGES "
                                "is off); embed locally with chronoseal stamp --embed")
    facts = RegistrationFacts.of(
        receipt.id, json.loads(receipt.manifest_jcs), receipt.manifest_digest, proof,
        [TokenTime(t.tsa, format_timestamp(t.gen_time), t.serial) for t in tokens],
        base_url.rstrip("/") + receipt_links(receipt.id)["bundle"],
        json.loads(receipt.head_jcs) if receipt.head_jcs else None)
    assert receipt.media_type is not None
    copy = embed(image, receipt.media_type, manifest_definition(facts),
                 signing_material(services), claim_tsa(services.settings).url)
    spooled = spool_image(io.BytesIO(copy), services.settings.max_upload_bytes)
    try:
        registration = child_registration(receipt, spooled)
        registration.idempotency_key = _copy_key(receipt.id)
        try:
            child = register(services, registration, signals)
        except IdempotencyConflictError:
            # Another call registered its copy meanwhile (answer that one), or the copy
            # registered earlier lost its bytes (register this one on its own).
            earlier = _earlier_copy(services, receipt)
            if earlier is not None:
                return earlier
            spooled.file.seek(0)
            registration.idempotency_key = None
            child = register(services, registration, signals)
    finally:
        spooled.close()
    return Credentialed(copy, receipt.media_type, receipt.id, child)


def _copy_key(original_id: str) -> str:
    """The idempotency key the original's signed copy is registered under."""
    return f"c2pa-copy-of:{original_id}"


def _earlier_copy(services: Services, original: Receipt) -> Credentialed | None:
    """The copy registered for `original` before, while its bytes are kept."""
    with services.engine.connect() as conn:
        child = receipt_by_idempotency_key(conn, original.api_key_id, _copy_key(original.id))
        data = services.uploads.load(conn, child.image_sha256) if child is not None else None
    if child is None or data is None:
        return None
    assert original.media_type is not None
    return Credentialed(data, original.media_type, original.id, Registered(child, []))


def child_registration(parent: Receipt, image: SpooledImage) -> Registration:
    """The copy's registration, a child of `parent`: its manifest names the original among
    its parents (as the iteration history does), besides the link the copy's own C2PA manifest
    states (org.chronoseal.registration copy_of) and the answer's headers."""
    generation = json.loads(parent.manifest_jcs).get("generation") or {}
    return Registration(owner=parent.api_key_id, image=image,
                        metadata=child_metadata(generation), public=parent.public,
                        lineage=Lineage(parents=(parent.id,)))


def local_signer(settings: Settings) -> LocalSigner:
    """What `chronoseal stamp --embed` signs with on this machine: the server's signing keys
    in its data dir (never made here) and the claim TSA of these settings."""
    return LocalSigner(load_existing(settings.data_path), claim_tsa(settings).url)


def claim_tsa(settings: Settings) -> TSAConfig:
    """The TSA that time-stamps claim signatures: settings.c2pa_tsa, else the first enabled."""
    name = settings.c2pa_tsa
    chosen = [t for t in load_enabled_tsas(settings) if name is None or t.name == name]
    if not chosen:
        raise ConfigError(f"c2pa_tsa {name!r} is not an enabled TSA" if name
                          else "no TSA is enabled to time-stamp Content Credentials")
    return chosen[0]
