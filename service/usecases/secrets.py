"""Rotate the key that seals webhook, integration and callback secrets at rest.

With the key file (`<data dir>/secrets.key`): a new key is written first in the file beside the
old ones, every secret is sealed again under it in one transaction, then the file keeps only the
new key; a crash in between leaves a file whose keys still open everything, and running the
rotation again finishes it. With CHRONOSEAL_SECRETS_KEY the operator sets "new,old" and the
rotation seals everything under the first; the old key can then be dropped from the variable.
Running processes keep the keys they loaded: restart them afterwards (docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.storage.engine import write_transaction
from service.storage.secrets import replace_secret, stored_secrets
from service.webhooks.secretbox import (
    KEY_FILE_NAME,
    MAX_KEYS,
    SecretBox,
    new_key,
    read_key_file,
    write_key_file,
)
from service.wiring import Services


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the key now sealing, how many secrets were sealed again, and the
    key file rewritten (None when the keys come from the environment)."""

    key_id: str
    resealed: int
    key_file: Path | None


def rotate_key(services: Services) -> Rotation:
    """Seal every stored secret under a new key (the file's) or the environment's first key."""
    settings = services.settings
    if settings.secrets_key:
        box = SecretBox(list(settings.secrets_key))
        return Rotation(box.current_id, _reseal(services, box), None)
    key_file = settings.data_path / KEY_FILE_NAME
    keys = [new_key(), *read_key_file(key_file)][:MAX_KEYS]
    write_key_file(key_file, keys)  # new first: from here on, the file opens old and new
    box = SecretBox(keys)
    resealed = _reseal(services, box)
    write_key_file(key_file, keys[:1])
    return Rotation(box.current_id, resealed, key_file)


def _reseal(services: Services, box: SecretBox) -> int:
    count = 0
    with write_transaction(services.engine) as conn:
        for table, row_key, stored in stored_secrets(conn):
            if not box.is_current(stored):
                count += replace_secret(conn, table, row_key, stored, box.seal(box.open(stored)))
    return count
