"""`chronoseal keys`: the key is printed once on the last line, and only its hash is stored."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from service.cli import main
from service.storage.tables import api_keys


def _run(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def test_create_list_revoke(db_url, db_engine, capsys, make_api):
    code, lines = _run(capsys, "keys", "--url", db_url, "create", "--name", "ci bot")
    assert code == 0
    secret = lines[-1]
    assert secret.startswith("cs_") and " " not in secret and len(secret) >= 40
    with db_engine.connect() as conn:
        rows = conn.execute(select(api_keys).where(api_keys.c.name == "ci bot")).mappings().all()
    [row] = rows
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(dict(row))  # only the hash (and a short display prefix) is kept

    code, lines = _run(capsys, "keys", "--url", db_url, "list")
    assert code == 0 and any(row["id"] in line and "active" in line for line in lines)
    assert all(secret not in line for line in lines)

    # The key works against the API on the same database until it is revoked (at once
    # without the key cache; test_api_auth covers the cache's delay).
    api = make_api(auth_cache_s=0)
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/stamps", headers=headers).status_code == 200
    code, lines = _run(capsys, "keys", "--url", db_url, "revoke", row["id"])
    assert code == 0 and "revoked" in lines[-1]
    assert api.client.get("/v1/stamps", headers=headers).status_code == 401
    code, lines = _run(capsys, "keys", "--url", db_url, "list", "--active")
    assert all(row["id"] not in line for line in lines)


def test_revoke_unknown_key_fails(db_url, capsys):
    assert main(["keys", "--url", db_url, "revoke", "key_missing"]) == 1
    assert "no key" in capsys.readouterr().err


def test_create_refuses_an_empty_name(db_url, capsys):
    assert main(["keys", "--url", db_url, "create", "--name", "  "]) == 2


def test_keys_create_names_its_database_and_creates_none(tmp_path, monkeypatch, capsys):
    """Run where no service's data dir is, `keys create` (and every keys and integrations
    command) refuses instead of making a database of its own, whose key the service would
    reject; on the service's, it says which one it wrote to."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CHRONOSEAL_DATA_DIR", raising=False)
    monkeypatch.setenv("CHRONOSEAL_CONFIG", str(tmp_path / "absent.toml"))
    for argv in (["keys", "create", "--name", "lost"], ["keys", "list"], ["keys", "revoke", "k"],
                 ["integrations", "create", "--name", "blog", "--key", "k"],
                 ["integrations", "list"]):
        assert main(argv) == 1
        database = tmp_path / "data" / "chronoseal.db"
        assert capsys.readouterr().err.strip().endswith(
            f"no Chronoseal database at sqlite:///{database}; start the service there or set "
            "CHRONOSEAL_DATA_DIR (or DATABASE_URL)")
        assert not (tmp_path / "data").exists()

    monkeypatch.setenv("CHRONOSEAL_DATA_DIR", str(tmp_path / "service"))
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    code, lines = _run(capsys, "keys", "create", "--name", "found")
    assert code == 0
    assert f" in sqlite:///{tmp_path / 'service' / 'chronoseal.db'}; " in lines[-2]
    assert lines[-1].startswith("cs_")
