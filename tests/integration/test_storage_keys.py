"""API keys: secrets are returned once and only their SHA-256 is stored."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, update

from service.storage import (
    AmbiguousKeyError,
    create_api_key,
    find_api_key_by_secret,
    list_api_keys,
    revoke_api_key,
    write_transaction,
)
from service.storage.tables import api_keys


def test_create_and_find_by_secret(db_engine) -> None:
    with write_transaction(db_engine) as conn:
        key, secret = create_api_key(conn, "ci uploader")
    assert secret.startswith("cs_") and len(secret) >= 40
    assert key.id.startswith("key_") and key.prefix == secret[:8]
    assert key.created_at.tzinfo is not None and not key.revoked
    with db_engine.connect() as conn:
        found = find_api_key_by_secret(conn, secret)
        assert found == key
        assert find_api_key_by_secret(conn, secret + "x") is None
        assert find_api_key_by_secret(conn, "") is None


def test_only_the_hash_is_stored(db_engine) -> None:
    with write_transaction(db_engine) as conn:
        key, secret = create_api_key(conn, "k")
    with db_engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == key.id)).mappings().one()
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row.values())


def test_revoke_by_prefix_and_by_id(db_engine) -> None:
    with write_transaction(db_engine) as conn:
        first, first_secret = create_api_key(conn, "first")
        second, second_secret = create_api_key(conn, "second")
    with write_transaction(db_engine) as conn:
        revoked = revoke_api_key(conn, first.prefix)
        assert revoked is not None and revoked.id == first.id and revoked.revoked
        again = revoke_api_key(conn, first.id)
        assert again is not None and again.revoked_at == revoked.revoked_at
        assert revoke_api_key(conn, second.id).revoked
        assert revoke_api_key(conn, "key_nonexistent") is None
    with db_engine.connect() as conn:
        assert find_api_key_by_secret(conn, first_secret) is None
        assert find_api_key_by_secret(conn, second_secret) is None
        assert [k.id for k in list_api_keys(conn)] == [first.id, second.id]
        assert list_api_keys(conn, include_revoked=False) == []


def test_ambiguous_prefix_is_refused(db_engine) -> None:
    with write_transaction(db_engine) as conn:
        first, _ = create_api_key(conn, "a")
        second, _ = create_api_key(conn, "b")
        conn.execute(update(api_keys).where(api_keys.c.id == second.id).values(prefix=first.prefix))
    with write_transaction(db_engine) as conn, pytest.raises(AmbiguousKeyError):
        revoke_api_key(conn, first.prefix)
