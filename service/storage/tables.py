"""The schema as SQLAlchemy Core tables: what repository functions query.

Migrations under `migrations/versions` create the same schema; a test compares the two so that
neither drifts. Timestamps are `UTCDateTime`: timezone-aware UTC in Python on every engine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)

# Constraint names are fixed so migrations can refer to them on both engines.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 40  # "rcp_" + 26-character ULID-like body, with room for longer prefixes
HEX_SHA256_LENGTH = 64
NAME_LENGTH = 200  # key names, external ids, lease owners: labels, not documents
IDEMPOTENCY_KEY_LENGTH = 255  # the IETF Idempotency-Key draft sets no limit; this bounds the index
TSA_NAME_LENGTH = 100
SESSION_LENGTH = 128  # usecases.lineage.MAX_SESSION_CHARS: an id, not a description
IMAGE_NAME_LENGTH = 255  # a file name as most file systems bound it (NAME_MAX)
SERIAL_LENGTH = 64  # RFC 3161 serials are up to 160 bits: at most 49 decimal digits

RECEIPT_STATUSES = ("pending", "stamped", "failed")
BATCH_STATUSES = ("open", "complete")
ATTEMPT_STATES = ("pending", "done", "rejected")
REVOCATION_KINDS = ("crl", "ocsp", "none")  # service.timestamping.revocation KINDS


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; `timestamptz` on PostgreSQL, naive UTC text on SQLite.

    SQLite has no time zones, so values are converted to UTC and stored naive; reads attach UTC
    again. Naive input is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = MetaData(naming_convention=NAMING_CONVENTION)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("key_hash", String(HEX_SHA256_LENGTH), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("root", String(HEX_SHA256_LENGTH), nullable=True),
    # The exact batch-head.json bytes whose SHA-256 the tokens imprint (migration 0010);
    # NULL for batches stamped before it, whose tokens imprint the root itself.
    Column("head_jcs", LargeBinary, nullable=True),
    Column("tree_size", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(NAME_LENGTH), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    CheckConstraint(_one_of("status", BATCH_STATUSES), name="status"),
    Index(None, "status", "lease_until"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("api_key_id", String(ID_LENGTH), ForeignKey("api_keys.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("image_sha256", String(HEX_SHA256_LENGTH), nullable=False),
    Column("image_size", BigInteger, nullable=True),
    Column("media_type", String(NAME_LENGTH), nullable=True),
    Column("manifest_jcs", LargeBinary, nullable=False),
    Column("manifest_digest", String(HEX_SHA256_LENGTH), nullable=False),
    Column("external_id", String(NAME_LENGTH), nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("warnings", Text, nullable=False, server_default="[]"),
    Column("public", Boolean, nullable=False, server_default=false()),
    Column("idempotency_key", String(IDEMPOTENCY_KEY_LENGTH), nullable=True),
    Column("request_fingerprint", String(HEX_SHA256_LENGTH), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("enqueued_at", UTCDateTime(), nullable=True),
    Column("stamped_at", UTCDateTime(), nullable=True),
    Column("failure", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("batch_id", String(ID_LENGTH), ForeignKey("batches.id"), nullable=True, index=True),
    Column("leaf_index", Integer, nullable=True),
    Column("proof", Text, nullable=True),
    # Its image waits for perceptual hashing (set at registration, cleared with the hashes).
    Column("hash_pending", Boolean, nullable=False, server_default=false()),
    # The iteration history (migration 0013): the working session named at registration, and
    # a private record's disclosure.json when its creator asked the server to keep it.
    Column("session", String(SESSION_LENGTH), nullable=True),
    Column("disclosure_json", LargeBinary, nullable=True),
    # The file name the client sent with the upload (migration 0017); shown on the certificate.
    Column("image_name", String(IMAGE_NAME_LENGTH), nullable=True),
    CheckConstraint(_one_of("status", RECEIPT_STATUSES), name="status"),
    UniqueConstraint("api_key_id", "idempotency_key"),
    UniqueConstraint("batch_id", "leaf_index"),
    Index(None, "api_key_id", "id"),
    Index(None, "api_key_id", "external_id"),
    Index(None, "api_key_id", "session", "id"),  # GET /v1/sessions/{id}, in order (0013)
    # Same bytes: the hashing job copies an earlier receipt's perceptual hashes, and a
    # registration's answer names the key's earlier receipts, oldest first (migration 0008).
    Index(None, "image_sha256", "api_key_id", "id"),
    # The claim query's work list: small because stamped receipts drop out of it.
    Index(
        "ix_receipts_unbatched",
        "id",
        sqlite_where=text("status = 'pending' AND batch_id IS NULL"),
        postgresql_where=text("status = 'pending' AND batch_id IS NULL"),
    ),
    # The hashing job's work list (migration 0006).
    Index(
        "ix_receipts_hash_pending",
        "id",
        sqlite_where=text("hash_pending = 1"),
        postgresql_where=text("hash_pending"),
    ),
    Index(
        "ix_receipts_pending_enqueued_at",
        "enqueued_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(ID_LENGTH), ForeignKey("batches.id"), nullable=False),
    Column("tsa", String(TSA_NAME_LENGTH), nullable=False),
    Column("reply_der", LargeBinary, nullable=False),
    Column("gen_time", UTCDateTime(), nullable=False),
    Column("serial", String(SERIAL_LENGTH), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # PEM, TSA certificate first, root last: the chain validated when the token was stored.
    Column("chain_pem", Text, nullable=True),
    UniqueConstraint("batch_id", "tsa"),
)

# RFC 4998 evidence records (migration 0011): one per token, its archive timestamps in order.
evidence_records = Table(
    "evidence_records",
    metadata,
    Column("batch_id", String(ID_LENGTH), ForeignKey("batches.id"), primary_key=True),
    Column("tsa", String(TSA_NAME_LENGTH), primary_key=True),
    Column("record_der", LargeBinary, nullable=False),  # the EvidenceRecord, DER
    # JSON list, one entry per archive timestamp: {"tsa": name, "chain_pem": PEM}.
    Column("renewals", Text, nullable=False),
    # When the last archive timestamp's certificate chain expires: the renewal job's key.
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("renewed_at", UTCDateTime(), nullable=False),
)

# Revocation data fetched when the token was stored (migration 0009): one row per certificate
# of the token's chain below the root, a DER CRL, or kind 'none' with the reason in `note`.
token_revocations = Table(
    "token_revocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_id", Integer, ForeignKey("tokens.id"), nullable=False),
    Column("cert_sha256", String(HEX_SHA256_LENGTH), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("url", Text, nullable=True),
    Column("der", LargeBinary, nullable=True),
    Column("note", Text, nullable=True),
    Column("fetched_at", UTCDateTime(), nullable=False),
    CheckConstraint(_one_of("kind", REVOCATION_KINDS), name="kind"),
    UniqueConstraint("token_id", "cert_sha256"),
)

batch_tsa_attempts = Table(
    "batch_tsa_attempts",
    metadata,
    Column("batch_id", String(ID_LENGTH), ForeignKey("batches.id"), primary_key=True),
    Column("tsa", String(TSA_NAME_LENGTH), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(_one_of("state", ATTEMPT_STATES), name="state"),
    Index(None, "state", "next_attempt_at"),
    # /readyz: each TSA's newest token and newest failure (migration 0007).
    Index(None, "tsa", "state", "updated_at"),
)


# Webhooks (issue 5): endpoints and callback secrets per key, the delivery outbox and log,
# inbound integrations and the messages they sent. Secrets are stored in clear: they must be
# read back to sign (HMAC), unlike API keys, which are only ever compared.
DELIVERY_STATES = ("pending", "succeeded", "failed")
INBOUND_STATES = ("accepted", "done", "failed")
WEBHOOK_EVENT_LENGTH = 64
WEBHOOK_MESSAGE_ID_LENGTH = 255  # Standard Webhooks ids are short; this bounds the index

callback_secrets = Table(
    "callback_secrets",
    metadata,
    Column("api_key_id", String(ID_LENGTH), ForeignKey("api_keys.id"), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("api_key_id", String(ID_LENGTH), ForeignKey("api_keys.id"), nullable=False,
           index=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event types
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),  # also the webhook-id header
    Column("api_key_id", String(ID_LENGTH), ForeignKey("api_keys.id"), nullable=False),
    Column("endpoint_id", String(ID_LENGTH), ForeignKey("webhook_endpoints.id"), nullable=True),
    Column("receipt_id", String(ID_LENGTH), nullable=True),
    Column("event", String(WEBHOOK_EVENT_LENGTH), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),  # the exact body, the same on every attempt
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    CheckConstraint(_one_of("status", DELIVERY_STATES), name="status"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "api_key_id", "id"),
)

# One row per attempt: the delivery log's history (when, what the receiver said, how long).
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(ID_LENGTH), ForeignKey("webhook_deliveries.id"),
           nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
)

integrations = Table(
    "integrations",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("api_key_id", String(ID_LENGTH), ForeignKey("api_keys.id"), nullable=False,
           index=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("integration_id", String(ID_LENGTH), ForeignKey("integrations.id"), nullable=False),
    Column("message_id", String(WEBHOOK_MESSAGE_ID_LENGTH), nullable=False),
    Column("receipt_id", String(ID_LENGTH), nullable=False),  # reserved when accepted
    Column("body", LargeBinary, nullable=True),  # the verified body; cleared once processed
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),  # image downloads tried
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("processed_at", UTCDateTime(), nullable=True),
    CheckConstraint(_one_of("status", INBOUND_STATES), name="status"),
    UniqueConstraint("integration_id", "message_id"),
    Index(None, "status", "next_attempt_at"),
)


# Perceptual hashes of registered images (issue 6): one row per stored view of an image. The
# 64-bit pHash is split into bands, each indexed: a search looks up the bands within a small
# Hamming radius of the query's (multi-index hashing), never every row. Three bands of about
# log2(rows) bits (issue 16, migration 0015): at millions of views each value looked up reads
# a few rows, where 16-bit bands read hundreds. Each band's index holds the pHash too (migration
# 0019): the lookup tests pHash distance from the index alone and reads the table only for the
# few close views (at 19 million rows a query reads ~3,600 index entries and keeps a handful).
PHASH_BAND_BITS = (22, 21, 21)
PHASH_BANDS = len(PHASH_BAND_BITS)
perceptual_hashes = Table(
    "perceptual_hashes",
    metadata,
    Column("receipt_id", String(ID_LENGTH), ForeignKey("receipts.id"), primary_key=True),
    Column("view", Integer, primary_key=True, autoincrement=False),
    Column("phash", BigInteger, nullable=False),  # the 64 bits as a signed integer
    Column("dhash256", LargeBinary(32), nullable=False),
    *(Column(f"band{i}", Integer, nullable=False) for i in range(PHASH_BANDS)),
    *(Index(None, f"band{i}", "phash") for i in range(PHASH_BANDS)),
)
# The cells (a 3x3 grid) of the same images (migration 0020), laid out as perceptual_hashes: a
# second stage that a search looks up only when no whole view matched (a badge or logo inside
# the picture), so their rows never lengthen the first lookup, which every search makes.
perceptual_cells = Table(
    "perceptual_cells",
    metadata,
    Column("receipt_id", String(ID_LENGTH), ForeignKey("receipts.id"), primary_key=True),
    Column("view", Integer, primary_key=True, autoincrement=False),
    Column("phash", BigInteger, nullable=False),
    Column("dhash256", LargeBinary(32), nullable=False),
    *(Column(f"band{i}", Integer, nullable=False) for i in range(PHASH_BANDS)),
    *(Index(None, f"band{i}", "phash") for i in range(PHASH_BANDS)),
)


# Uploaded images waiting for their perceptual hashes, by content (one row per distinct image).
# Written in the receipt's transaction, so a committed image receipt always has its pixels
# until a worker has hashed them; deleted then unless settings.keep_images.
# Kept in chunks so that neither the API writing nor a reader needs the whole image as one value.
image_uploads = Table(
    "image_uploads",
    metadata,
    Column("image_sha256", String(HEX_SHA256_LENGTH), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# A small picture of every uploaded image (issue 15), written with its perceptual hashes and
# kept after the upload is dropped: the pages and the exhibit show it instead of nothing.
thumbnails = Table(
    "thumbnails",
    metadata,
    Column("image_sha256", String(HEX_SHA256_LENGTH), primary_key=True),
    Column("media_type", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime: the only kind the tables accept."""
    return datetime.now(UTC)
