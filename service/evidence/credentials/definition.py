"""What Chronoseal's C2PA manifest says (the SDK's manifest definition, JSON).

Three assertions: `c2pa.actions` (c2pa.created, trainedAlgorithmicMedia, the generating
software from the record), `org.chronoseal.registration` (receipt id, manifest digest, batch
head and Merkle proof, each TSA's time, where the bundle is, and which registered image this is
a copy of) and `org.chronoseal.generation` (the generation record's fields: the raw original
stays in the bundle's manifest.json; a private record gives its commitments only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from service.evidence.generation import GENERATION_FIELDS

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
REGISTRATION_LABEL = "org.chronoseal.registration"
GENERATION_LABEL = "org.chronoseal.generation"
PRIVATE_KEY = "commitments"  # a private record's manifest holds commitments, not values


@dataclass(frozen=True)
class TokenTime:
    """One TSA's token over the batch: who, when (RFC 3339), its serial."""

    tsa: str
    gen_time: str
    serial: str


@dataclass(frozen=True)
class RegistrationFacts:
    """The registered original's receipt, as the copy's manifest states it."""

    receipt_id: str
    manifest_digest: str
    image_sha256: str
    submitted_at: str
    generation: dict[str, Any]
    proof: dict[str, Any]
    tokens: list[TokenTime]
    bundle_url: str
    batch_head: dict[str, Any] | None = None
    title: str = "Chronoseal registered image"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, receipt_id: str, manifest: dict[str, Any], manifest_digest: str,
           proof: dict[str, Any], tokens: list[TokenTime], bundle_url: str,
           batch_head: dict[str, Any] | None) -> RegistrationFacts:
        """From a receipt's parts as the API and the bundle show them (the server and the
        client build it the same way)."""
        return cls(receipt_id=receipt_id, manifest_digest=manifest_digest,
                   image_sha256=manifest["image"]["sha256"],
                   submitted_at=manifest["submitted_at"],
                   generation=manifest.get("generation") or {}, proof=proof, tokens=tokens,
                   bundle_url=bundle_url, batch_head=batch_head)


def manifest_definition(facts: RegistrationFacts) -> dict[str, Any]:
    """The definition c2pa.Builder signs."""
    software = facts.generation.get("software")
    created: dict[str, Any] = {"action": "c2pa.created",
                               "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                               "when": facts.submitted_at}
    if isinstance(software, str) and software:
        created["softwareAgent"] = {"name": software}
    registration: dict[str, Any] = {
        "receipt_id": facts.receipt_id,
        "manifest_digest": facts.manifest_digest,
        "copy_of": {"receipt_id": facts.receipt_id, "image_sha256": facts.image_sha256},
        "proof": facts.proof,
        "timestamps": [{"tsa": t.tsa, "gen_time": t.gen_time, "serial": t.serial}
                       for t in facts.tokens],
        "bundle_url": facts.bundle_url,
        **facts.extra,
    }
    if facts.batch_head is not None:
        registration["batch_head"] = facts.batch_head
    return {
        "claim_generator_info": [{"name": "Chronoseal", "version": _version()}],
        "title": facts.title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": REGISTRATION_LABEL, "data": registration},
            {"label": GENERATION_LABEL, "data": generation_assertion(facts.generation)},
        ],
    }


def _version() -> str:
    try:
        return metadata.version("chronoseal")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "source"


def child_metadata(generation: dict[str, Any]) -> dict[str, Any]:
    """The generation record a copy is registered with: the original's normalised fields
    (its raw original and conflicts stay with the original's receipt)."""
    return {k: v for k, v in generation.items() if k not in ("raw", "conflicts", "sources")}


def generation_assertion(generation: dict[str, Any]) -> dict[str, Any]:
    """The record's normalised fields (commitments only when the record is private)."""
    if PRIVATE_KEY in generation:
        return {PRIVATE_KEY: generation[PRIVATE_KEY]}
    return {k: generation[k] for k in GENERATION_FIELDS if k in generation}
