"""API keys: only a SHA-256 of each secret is stored, so a database leak reveals no usable key.

Secrets are long random strings (not passwords), so a plain SHA-256 is enough to make them
unrecoverable, and it allows an indexed lookup by hash instead of a scan with slow KDFs.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, or_, select, update

from service.storage.errors import AmbiguousKeyError
from service.storage.ids import API_KEY_PREFIX, new_id
from service.storage.tables import api_keys, utcnow

SECRET_PREFIX = "cs_"  # noqa: S105 (a label, not a secret): recognisable by secret scanners
SECRET_BYTES = 32  # 256 bits of randomness: not guessable, so no slow hash is needed
DISPLAY_PREFIX_LENGTH = 8  # shown in listings so people can tell keys apart; not secret enough


@dataclass(frozen=True)
class ApiKey:
    """An API key as listed: never the secret, never its hash."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def hash_secret(secret: str) -> str:
    """SHA-256 hex of the secret's UTF-8 bytes: what `api_keys.key_hash` holds."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


_COLUMNS = (api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.created_at,
            api_keys.c.revoked_at)


def create_api_key(conn: Connection, name: str, now: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is shown once and never stored."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey(
        id=new_id(API_KEY_PREFIX),
        name=name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        created_at=now or utcnow(),
        revoked_at=None,
    )
    conn.execute(
        api_keys.insert().values(
            id=key.id,
            name=key.name,
            key_hash=hash_secret(secret),
            prefix=key.prefix,
            created_at=key.created_at,
        )
    )
    return key, secret


def find_api_key_by_secret(conn: Connection, secret: str) -> ApiKey | None:
    """The non-revoked key whose secret this is, or None."""
    return find_api_key_by_hash(conn, hash_secret(secret))


def find_api_key_by_hash(conn: Connection, key_hash: str) -> ApiKey | None:
    """The non-revoked key whose secret has this SHA-256 (hash_secret), or None."""
    row = conn.execute(
        select(*_COLUMNS).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    ).mappings().first()
    return _key(row) if row else None


def list_api_keys(conn: Connection, include_revoked: bool = True) -> list[ApiKey]:
    """All keys, oldest first."""
    query = select(*_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return [_key(row) for row in conn.execute(query).mappings()]


def revoke_api_key(
    conn: Connection, id_or_prefix: str, now: datetime | None = None
) -> ApiKey | None:
    """Revoke the key with this id or display prefix; None if there is none.

    Revoking twice keeps the first revocation time. A prefix shared by several keys raises
    AmbiguousKeyError rather than revoking an arbitrary one.
    """
    rows = conn.execute(
        select(*_COLUMNS).where(
            or_(api_keys.c.id == id_or_prefix, api_keys.c.prefix == id_or_prefix)
        )
    ).mappings().all()
    if not rows:
        return None
    if len(rows) > 1:
        raise AmbiguousKeyError(f"{id_or_prefix!r} matches {len(rows)} keys; use the key id")
    key = _key(rows[0])
    if key.revoked_at is not None:
        return key
    revoked_at = now or utcnow()
    conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key.id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=revoked_at)
    )
    return ApiKey(key.id, key.name, key.prefix, key.created_at, revoked_at)
