"""Register an image or a digest: the one path for uploads, inbound posts and batches.

Steps, in this order: probe the image and read its embedded generation record (uploads only),
merge that record with the caller's, build the manifest, then in one write transaction shared
with other registrations (group commit) insert the receipt (idempotently) and keep the image
for perceptual hashing; after the commit, signal stamping and hashing. Nothing before the
commit is visible to anyone, and nothing after it may fail the registration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from sqlalchemy import Connection

from service.errors import InvalidInputError, MetadataError
from service.evidence.disclosure import (
    Opening,
    commit_generation,
    disclosure_document,
    private_generation,
)
from service.evidence.generation import (
    merge_generation,
    normalize_client_record,
    normalize_request_metadata,
)
from service.evidence.hashing import (
    BOMB,
    UNDECODABLE,
    HashedUpload,
    Readable,
    hash_stream,
    probe_image,
    sniff_media_type,
)
from service.evidence.manifest import MAX_EXTERNAL_ID_CHARS, Manifest, build_manifest, canonicalize
from service.evidence.records import read_generation_record
from service.evidence.records.comfyui_reader import request_fields as comfyui_request_fields
from service.storage.group_commit import group_commit_for
from service.storage.receipts import (
    EarlierReceipt,
    Receipt,
    earlier_receipts,
    get_receipt,
    insert_receipt,
)
from service.storage.tables import IDEMPOTENCY_KEY_LENGTH, IMAGE_NAME_LENGTH, NAME_LENGTH
from service.storage.uploads import undone_unless_committed
from service.usecases.disk import disk_full_as_error, ensure_room
from service.usecases.lineage import Lineage, resolve_parents
from service.usecases.metrics import observe_upload
from service.usecases.signals import Signals
from service.webhooks.ssrf import Allowlist, check_registered_url
from service.wiring import Services

# An image up to this size is spooled in memory, larger ones in a temporary file: web-sized
# images never touch the disk, a 50 MiB upload never sits in the API's memory.
SPOOL_MEMORY_BYTES = 1024 * 1024
RECORD_WARNING = "generation record: "  # prefixes the reader's warnings
# Earlier registrations named in a registration's answer: the first ones carry the priority
# claim; a creator who registered one image a hundred times needs no list of a hundred.
MAX_EARLIER = 5
RECORD_TOO_LARGE = "generation record: does not fit the manifest beside the request's; left out"
RECORD_CONFLICT = ("generation record: the file and the request state different {fields}; the "
                   "file's values are used, both are kept in generation.conflicts")
# The manifest allows longer external ids than the column holds; the column decides.
MAX_EXTERNAL_ID = min(MAX_EXTERNAL_ID_CHARS, NAME_LENGTH)
MAX_IDEMPOTENCY_KEY_CHARS = IDEMPOTENCY_KEY_LENGTH  # the column's width
MAX_IMAGE_NAME_CHARS = IMAGE_NAME_LENGTH  # the column's width; longer names are cut, not refused
_PATH_SEPARATORS = re.compile(r"^.*[/\\]")  # "C:\\fakepath\\x.png" from old browsers: the last part
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

log = logging.getLogger(__name__)


@dataclass
class SpooledImage:
    """An image's bytes, spooled and hashed on the way in; the registration's caller closes it."""

    file: BinaryIO
    hashed: HashedUpload
    name: str | None = None

    def close(self) -> None:
        self.file.close()


def spool_image(stream: Readable, limit: int, name: str | None = None) -> SpooledImage:
    """Hash `stream` into a spool (UploadTooLargeError past `limit` bytes), rewound."""
    spool = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES))  # noqa: SIM115
    try:
        hashed = hash_stream(stream, limit=limit, spool=spool)
    except BaseException:
        spool.close()
        raise
    return SpooledImage(spool, hashed, name)


def image_file_name(sent: str | None) -> str | None:
    """The file name to keep from what a client sent: its last path part, without control
    characters, at most MAX_IMAGE_NAME_CHARS; None when nothing is left."""
    if sent is None:
        return None
    name = _CONTROL.sub("", _PATH_SEPARATORS.sub("", sent)).strip()[:MAX_IMAGE_NAME_CHARS]
    return name or None


@dataclass
class Registration:
    """What a caller asks to register: an image (or only its digest) and its fields."""

    owner: str  # the API key id the receipt belongs to
    image: SpooledImage | None = None
    sha256: str | None = None  # lower-case hex; digest-only registrations
    metadata: dict[str, Any] = field(default_factory=dict)  # the caller's generation record
    external_id: str | None = None
    callback_url: str | None = None
    public: bool = False
    idempotency_key: str | None = None
    publication: dict[str, str] | None = None  # as a posting tool reported it
    # Digest-only: the record the submitter's client read from the file (the server never sees
    # the bytes), merged like a record read here, so the receipt has `source` and `sources`.
    file_record: dict[str, Any] | None = None
    receipt_id: str | None = None  # reserved beforehand (inbound messages)
    name_earlier: bool = False  # answer the owner's earlier receipts of the same bytes
    lineage: Lineage = field(default_factory=Lineage)  # session, parents, private record

    @property
    def image_sha256(self) -> str:
        if self.image is not None:
            return self.image.hashed.sha256.hex()
        assert self.sha256 is not None, "a registration needs an image or a digest"
        return self.sha256

    def fingerprint(self) -> str:
        """SHA-256 over the canonical request (JCS): a repeat with another body is a conflict."""
        canonical = {
            "sha256": self.image_sha256,
            "size": self.image.hashed.size if self.image is not None else None,
            "metadata": self.metadata,
            "external_id": self.external_id,
            "callback_url": self.callback_url,
            "public": self.public,
        }
        if self.lineage != Lineage():  # requests made before lineage keep their fingerprint
            canonical["lineage"] = {
                "session": self.lineage.session, "parents": list(self.lineage.parents),
                "private_record": self.lineage.private_record,
                "commitments": self.lineage.commitments,
                "store_disclosure": self.lineage.store_disclosure}
        if self.file_record is not None:  # absent before it existed: old fingerprints hold
            # By its SHA-256 over sorted JSON: the same record gives the same text, and the C
            # encoder takes a tenth of JCS's time on a record of a few KiB (batches of 1,000).
            canonical["file_record"] = hashlib.sha256(json.dumps(
                self.file_record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return hashlib.sha256(canonicalize(canonical)).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """Everything decided before the transaction: manifest, warnings, whether to keep."""

    manifest: Manifest
    media_type: str | None
    size: int | None
    warnings: list[str]
    keep: bool
    disclosure: bytes | None = None  # disclosure.json of a private record committed here


def prepare(reg: Registration, parents: Sequence[dict[str, str]] = ()) -> Prepared:
    """Probe the image, read its record and build the manifest (outside any lock)."""
    lineage = reg.lineage
    if lineage.commitments is not None and (reg.image is not None or reg.metadata):
        raise InvalidInputError("commitments replace the record: send them with a digest and "
                                "no metadata")
    request_generation = normalize_request_metadata(reg.metadata, comfyui_request_fields)
    warnings: list[str] = []
    file_generation = None
    media_type = size = None
    keep = False
    if reg.image is not None:
        image = reg.image
        probe = probe_image(image.file)
        record = read_generation_record(image.file)
        image.file.seek(0)
        warnings = [*probe.warnings, *(RECORD_WARNING + w for w in record.warnings)]
        file_generation = record.as_generation() if record.found else None
        media_type, size = sniff_media_type(image.hashed.head), image.hashed.size
        keep = not {UNDECODABLE, BOMB} & set(probe.warnings)  # pixels to hash later
    elif reg.file_record is not None:
        file_generation = normalize_client_record(reg.file_record)

    def build(generation: dict[str, Any]) -> Manifest:
        return build_manifest(
            image_sha256=reg.image_sha256, size=size, media_type=media_type,
            generation=generation, submitted_at=datetime.now(UTC),
            external_id=reg.external_id, publication=reg.publication,
            session=lineage.session, parents=parents,
        )

    if lineage.commitments is not None:  # committed on the client: no value ever arrives
        manifest = build(private_generation(lineage.commitments))
        return Prepared(manifest, media_type, size, warnings, keep)

    try:
        manifest = build(merge_generation(request_generation, file_generation))
    except MetadataError:
        if file_generation is None:
            raise
        # Both together exceed the manifest's bounds: the request's alone (the file's record
        # stays in the hashed bytes).
        warnings.append(RECORD_TOO_LARGE)
        manifest = build(request_generation)
    conflicts = manifest.obj["generation"].get("conflicts")
    if conflicts:  # told in the answer, not only buried in the manifest
        warnings.append(RECORD_CONFLICT.format(fields=", ".join(c["field"] for c in conflicts)))
    if not lineage.private_record:
        return Prepared(manifest, media_type, size, warnings, keep)
    private, openings = commit_generation(manifest.obj["generation"])
    manifest = build(private)
    return Prepared(manifest, media_type, size, warnings, keep, _disclosure(manifest, openings))


def _disclosure(manifest: Manifest, openings: dict[str, Opening]) -> bytes:
    return disclosure_document(manifest.digest.hex(), openings)


def resolve_lineage(services: Services, reg: Registration) -> list[dict[str, str]]:
    """The manifest's parents for `reg.lineage.parents`; UnknownParentError before anything is
    written (a parent receipt this key does not own)."""
    if not reg.lineage.parents:
        return []
    with services.engine.connect() as conn:
        return resolve_parents(conn, reg.owner, reg.lineage.parents)


def insert_prepared(conn: Connection, reg: Registration, prepared: Prepared,
                    fingerprint: str | None) -> Receipt:
    """Insert the prepared receipt (idempotently): the one insert of single and batch routes."""
    manifest, image = prepared.manifest, reg.image
    return insert_receipt(
        conn, api_key_id=reg.owner, image_sha256=reg.image_sha256, image_size=prepared.size,
        media_type=prepared.media_type, manifest_jcs=manifest.jcs,
        manifest_digest=manifest.digest.hex(), external_id=reg.external_id,
        callback_url=reg.callback_url, warnings=prepared.warnings, public=reg.public,
        idempotency_key=reg.idempotency_key, request_fingerprint=fingerprint,
        receipt_id=reg.receipt_id, hash_pending=prepared.keep,
        session=reg.lineage.session,
        disclosure_json=prepared.disclosure if reg.lineage.store_disclosure else None,
        image_name=image_file_name(image.name) if image is not None else None,
    )


def check_callback(services: Services, reg: Registration) -> None:
    """A callback URL webhooks may not reach is refused now (400 url-refused), not first at
    delivery."""
    if reg.callback_url is not None:
        check_registered_url(reg.callback_url, Allowlist.parse(services.settings.webhook_allowlist),
                             resolver=services.resolver)


@dataclass(frozen=True)
class Registered:
    """The receipt as stored and, when asked for, the owner's earlier receipts of its bytes."""

    receipt: Receipt
    earlier: list[EarlierReceipt]
    # disclosure.json of a private record: answered once, for the client to keep; stored
    # with the receipt only when the registration asked (lineage.store_disclosure).
    disclosure: bytes | None = None


def register(services: Services, reg: Registration, signals: Signals, *,
             also: Callable[[Connection], None] | None = None) -> Registered:
    """Register `reg` and signal the work that follows.

    `also` runs in the receipt's transaction (an inbound message marked done with it). A
    repeated Idempotency-Key, or a reserved receipt id that exists already, returns the first
    receipt with `replayed` set. Raises MetadataError, IdempotencyConflictError, DiskFullError
    (nothing kept: the disk has no room for it, see usecases.disk).
    """
    check_callback(services, reg)
    # Refused before anything is written when it would eat the disk's reserve (usecases.disk).
    ensure_room(services, reg.image.hashed.size if reg.image is not None else 0)
    prepared = prepare(reg, resolve_lineage(services, reg))
    image = reg.image
    uploads = services.uploads
    sha256 = reg.image_sha256
    fingerprint = reg.fingerprint() if reg.idempotency_key else None  # not under the lock

    def write(conn: Connection) -> Registered:
        existing = get_receipt(conn, reg.receipt_id, None) if reg.receipt_id else None
        if existing is not None:
            receipt = replace(existing, replayed=True)
        else:
            receipt = insert_prepared(conn, reg, prepared, fingerprint)
        if prepared.keep and uploads.transactional and not receipt.replayed:
            assert image is not None
            if uploads.keep(conn, sha256, image.file):
                kept.append(sha256)
        if also is not None:
            also(conn)
        # Read in the transaction it needs anyway: on its own connection this costs three
        # times as much (BEGIN and ROLLBACK of a read snapshot around a 50 us query).
        earlier = (earlier_receipts(conn, reg.owner, sha256, exclude=receipt.id, limit=MAX_EARLIER)
                   if reg.name_earlier else [])
        # A replay answers the stored disclosure (if any): fresh salts would not open it.
        disclosure = receipt.disclosure_json if receipt.replayed else prepared.disclosure
        return Registered(receipt, earlier, disclosure)

    with disk_full_as_error(services), undone_unless_committed(uploads) as kept:
        if prepared.keep and not uploads.transactional:
            # A file is written before the shared transaction, not while holding the write lock.
            assert image is not None
            if uploads.keep(None, sha256, image.file):
                kept.append(sha256)
        # Shared with other registrations' inserts: one commit (and fsync) for the whole group.
        registered = group_commit_for(services.engine).run(write)
    receipt = registered.receipt
    if prepared.size is not None and not receipt.replayed:
        observe_upload(prepared.size)
    # DEBUG: the API's request line (or inbound's line) already names the receipt at INFO. The
    # check first: this runs on every upload, and the fields are built only when they are kept.
    if log.isEnabledFor(logging.DEBUG):
        log.debug("receipt %s registered", receipt.id, extra={
            "receipt_id": receipt.id, "replayed": receipt.replayed, "size": prepared.size})
    if receipt.replayed:
        for digest in kept:  # the first request's image was hashed already: nothing waits
            uploads.forget(digest)
    # Committed above; from here on nothing may fail the registration: the signals never
    # raise, and the sweeper re-enqueues anything Redis did not take (latency, never a loss).
    if receipt.status == "pending":
        signals.stamping.poke()
    if prepared.keep and not receipt.replayed:
        signals.hashing.poke()
    return registered
