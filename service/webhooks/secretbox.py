"""Webhook endpoint, integration and callback secrets sealed at rest.

The database holds `sealed:v1:<key id>:<Fernet token>` (the Fernet specification: AES-128-CBC
then HMAC-SHA256 over it), so a copy of it without the key reveals no secret. The key is
CHRONOSEAL_SECRETS_KEY (comma-separated, the first seals, the others only open: a rotation in
progress) or else `<data dir>/secrets.key` (0600, made on first start; one key per line, same
order). The key id (the first hex digits of SHA-256 of the key) says which key sealed a value, so
a rotation re-seals row by row. Opened values are cached: signing and inbound verification read
them on every request.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from service.errors import ConfigError

SEALED_PREFIX = "sealed:v1:"
KEY_FILE_NAME = "secrets.key"
KEY_ID_CHARS = 8  # 32 bits: tells a handful of keys apart, and says nothing about them
MAX_KEYS = 8  # the sealing key and the older ones of unfinished rotations
MAX_CACHED = 4096  # opened secrets kept in memory: one per endpoint, integration, key in use
KEY_FILE_MODE = 0o600  # the key file is read by the service's user only
MAX_KEY_FILE_BYTES = 4096  # MAX_KEYS keys of 44 characters and their newlines


def key_id(key: str) -> str:
    """The public name of a key: stored with every value it seals."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:KEY_ID_CHARS]


def new_key() -> str:
    """A fresh key (32 random bytes, URL-safe base64, as Fernet takes them)."""
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Seals with the first key, opens with any; ConfigError for a value no key opens."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not 1 <= len(keys) <= MAX_KEYS:
            raise ConfigError(f"secrets key: give 1..{MAX_KEYS} keys, got {len(keys)}")
        try:
            self._fernets = {key_id(k): Fernet(k.encode("ascii")) for k in keys}
        except (ValueError, UnicodeError) as exc:  # never echo the key itself
            raise ConfigError("secrets key: each key must be 32 bytes in URL-safe base64 "
                              "(make one with `chronoseal secrets new-key`)") from exc
        self.current_id = key_id(keys[0])
        self._opened: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._fernets)

    def seal(self, secret: str) -> str:
        """`secret` as stored: sealed under the current key."""
        token = self._fernets[self.current_id].encrypt(secret.encode("utf-8")).decode("ascii")
        return f"{SEALED_PREFIX}{self.current_id}:{token}"

    def open(self, stored: str) -> str:
        """The secret a stored value holds. A value without the prefix is returned as is: rows
        written before sealing existed (the 0012 migration seals them all)."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        cached = self._opened.get(stored)
        if cached is not None:
            return cached
        kid, _, token = stored[len(SEALED_PREFIX):].partition(":")
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise ConfigError(f"a secret is sealed under key {kid}, which is not configured "
                              f"(configured: {', '.join(self._fernets)})")
        try:
            secret = fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise ConfigError(f"a secret sealed under key {kid} does not open") from exc
        with self._lock:
            if len(self._opened) >= MAX_CACHED:
                self._opened.clear()  # rare: more secrets in use than the bound
            self._opened[stored] = secret
        return secret

    def is_current(self, stored: str) -> bool:
        """Whether `stored` is sealed under the current key (a rotation leaves it alone)."""
        return stored.startswith(f"{SEALED_PREFIX}{self.current_id}:")


def read_key_file(path: Path) -> list[str]:
    """The keys of a key file, sealing key first; ConfigError if it is unreadable or empty."""
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the secrets key file {path}: {exc.strerror}") from exc
    if len(text) > MAX_KEY_FILE_BYTES:
        raise ConfigError(f"{path} is larger than a key file is")
    keys = [line.strip() for line in text.decode("ascii", "replace").splitlines()]
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys:
        raise ConfigError(f"{path} holds no key")
    return keys


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the key file atomically, readable by its owner only."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write("".join(f"{k}\n" for k in keys))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def load_keys(env_keys: Sequence[str], key_file: Path) -> list[str]:
    """The configured keys: the environment's, else the key file's, made on first start.

    Several processes may start at once: the file is created complete under a temporary name
    and linked into place, so every process reads the one key that won.
    """
    if env_keys:
        return list(env_keys)
    if not key_file.exists():
        try:
            _create_key_file(key_file)
        except OSError as exc:
            raise ConfigError(f"cannot create the secrets key file {key_file} "
                              f"({exc.strerror}): set CHRONOSEAL_SECRETS_KEY (`chronoseal "
                              "secrets new-key` makes one) or make the directory writable"
                              ) from exc
    return read_key_file(key_file)


def _create_key_file(key_file: Path) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = key_file.with_name(f".{key_file.name}.new-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(new_key() + "\n")
    try:
        os.link(temporary, key_file)
    except FileExistsError:
        pass  # another process made it first: its key stands
    finally:
        os.unlink(temporary)
