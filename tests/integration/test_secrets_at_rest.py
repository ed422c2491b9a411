"""Secrets at rest (issue 11, section 9): the data directory is private, the database and uploads
are readable by their owner only, webhook/integration/callback secrets are sealed so that a copy
of the database without the key reveals none, migration 0012 seals existing ones (its downgrade
opens them), and `chronoseal secrets rotate` seals everything under a new key."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from service.errors import ConfigError
from service.settings import load_settings
from service.storage import create_api_key, write_transaction
from service.storage.engine import make_engine
from service.storage.errors import StorageError
from service.storage.inbound import create_integration
from service.storage.migrate import alembic_config, current_revision, upgrade
from service.storage.secrets import stored_secrets
from service.storage.uploads import DirectoryUploads
from service.storage.webhooks import callback_secret, create_endpoint
from service.usecases.endpoints import add_endpoint, get_callback_secret
from service.usecases.integrations import add_integration
from service.webhooks.secretbox import KEY_FILE_NAME, SEALED_PREFIX, SecretBox, new_key
from service.wiring import Services, build_services
from tests.integration.conftest import REDIS_URL

CLI = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]
PUBLIC_URL = "https://93.184.215.14/hook"  # a literal public address: no DNS needed


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _services(data: Path, **env: str) -> Services:
    settings = load_settings(env={"REDIS_URL": REDIS_URL, **env},
                             config_file=data.parent / "absent.toml", data_dir=str(data))
    return build_services(settings)


def _secrets_of(services: Services) -> list[str]:
    """Make one secret of each kind through the use cases; returns them as the client sees."""
    with write_transaction(services.engine) as conn:
        key, _ = create_api_key(conn, "owner")
    _, endpoint_secret = add_endpoint(services, key.id, PUBLIC_URL, ["receipt.stamped"])
    _, integration_secret = add_integration(services, key.id, "blog")
    return [endpoint_secret, integration_secret, get_callback_secret(services, key.id)]


def _revealed(blob: bytes, secrets: list[str]) -> list[str]:
    """The secrets (or their base64 key material) found in raw bytes."""
    return [s for s in secrets if s.encode() in blob or s.split("_", 1)[-1].encode() in blob]


def test_the_data_directory_database_and_key_file_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an older release left it
    services = _services(data)
    _secrets_of(services)  # writes: SQLite makes its -wal and -shm files now
    assert _mode(data) == 0o700
    database = data / "chronoseal.db"
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), data / KEY_FILE_NAME):
        assert path.exists() and _mode(path) == 0o600, (path, oct(_mode(path)))
    services.engine.dispose()


def test_uploads_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    uploads = DirectoryUploads(tmp_path / "uploads")
    image = b"an uploaded image"
    assert uploads.keep(None, hashlib.sha256(image).hexdigest(), image)
    path = uploads.path(hashlib.sha256(image).hexdigest())
    assert path.read_bytes() == image and _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_a_copy_of_the_database_without_the_key_reveals_no_secret(tmp_path: Path) -> None:
    services = _services(tmp_path / "data")
    secrets = _secrets_of(services)
    with services.engine.connect() as conn:
        stored = stored_secrets(conn)
    assert len(stored) == 3 and all(v.startswith(SEALED_PREFIX) for _, _, v in stored)
    services.engine.dispose()  # SQLite folds its WAL back into the file
    database = tmp_path / "data" / "chronoseal.db"
    raw = b"".join(p.read_bytes() for p in database.parent.glob("chronoseal.db*"))
    assert _revealed(raw, secrets) == []
    # With the key they open (the service signs and verifies with them); another key cannot.
    box = services.secrets
    assert sorted(box.open(v) for _, _, v in stored) == sorted(secrets)
    with pytest.raises(ConfigError, match="not configured"):
        SecretBox([new_key()]).open(stored[0][2])


def test_the_key_may_come_from_the_environment_instead_of_a_file(tmp_path: Path) -> None:
    key = new_key()
    services = _services(tmp_path / "data", CHRONOSEAL_SECRETS_KEY=key)
    secrets = _secrets_of(services)
    assert not (tmp_path / "data" / KEY_FILE_NAME).exists()
    with services.engine.connect() as conn:
        stored = [v for _, _, v in stored_secrets(conn)]
    assert sorted(SecretBox([key]).open(v) for v in stored) == sorted(secrets)
    services.engine.dispose()


def test_migration_0012_seals_existing_secrets_and_its_downgrade_opens_them(
    empty_db_url: str,
) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine, "0011")
    plain = ["whsec_" + "A" * 43, "whsec_" + "B" * 43, "whsec_" + "C" * 43]
    with write_transaction(engine) as conn:
        key, _ = create_api_key(conn, "owner")
        create_endpoint(conn, key.id, PUBLIC_URL, ["receipt.stamped"], secret=plain[0])
        create_integration(conn, key.id, "blog", secret=plain[1])
        callback_secret(conn, key.id, secret_if_missing=plain[2])
    with pytest.raises(StorageError, match="needs the secrets key"):
        upgrade(engine)  # refused whole: nothing half sealed
    assert current_revision(engine) == "0011"
    box = SecretBox([new_key()])
    assert upgrade(engine, "0012", secrets=box) == "0012"
    with engine.connect() as conn:
        stored = [v for _, _, v in stored_secrets(conn)]
    assert all(box.is_current(v) for v in stored) and not set(stored) & set(plain)
    assert sorted(box.open(v) for v in stored) == plain
    with write_transaction(engine) as conn:
        command.downgrade(alembic_config(conn, box), "0011")
    with engine.connect() as conn:
        assert sorted(v for _, _, v in stored_secrets(conn)) == plain
    engine.dispose()


def test_chronoseal_secrets_rotate_seals_everything_under_a_new_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = _services(data)
    secrets = _secrets_of(services)
    old = services.secrets
    services.engine.dispose()
    env = {**os.environ, "CHRONOSEAL_DATA_DIR": str(data), "REDIS_URL": REDIS_URL}
    env.pop("DATABASE_URL", None)
    env.pop("CHRONOSEAL_SECRETS_KEY", None)
    done = subprocess.run([*CLI, "secrets", "rotate"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "sealed 3 secret(s) again" in done.stdout
    keys = (data / KEY_FILE_NAME).read_text().split()
    assert len(keys) == 1 and SecretBox(keys).current_id != old.current_id
    assert _mode(data / KEY_FILE_NAME) == 0o600
    assert not any(k in done.stdout + done.stderr for k in keys)  # the key is never printed
    rotated = _services(data)
    with rotated.engine.connect() as conn:
        stored = [v for _, _, v in stored_secrets(conn)]
    assert all(rotated.secrets.is_current(v) for v in stored)
    assert sorted(rotated.secrets.open(v) for v in stored) == sorted(secrets)
    with pytest.raises(ConfigError):
        old.open(stored[0])  # the old key opens nothing any more
    rotated.engine.dispose()


def test_rotation_with_keys_from_the_environment(tmp_path: Path) -> None:
    data, old, new = tmp_path / "data", new_key(), new_key()
    services = _services(data, CHRONOSEAL_SECRETS_KEY=old)
    secrets = _secrets_of(services)
    services.engine.dispose()
    env = {**os.environ, "CHRONOSEAL_DATA_DIR": str(data), "REDIS_URL": REDIS_URL,
           "CHRONOSEAL_SECRETS_KEY": f"{new},{old}"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([*CLI, "secrets", "rotate"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "drop the older keys" in done.stdout, done.stderr
    engine = make_engine(f"sqlite:///{data / 'chronoseal.db'}")
    with engine.connect() as conn:
        stored = [v for _, _, v in stored_secrets(conn)]
    assert sorted(SecretBox([new]).open(v) for v in stored) == sorted(secrets)
    engine.dispose()
