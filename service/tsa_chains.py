"""The PEM chain of each configured TSA, as shipped in evidence bundles (certs/<tsa>.pem).

With this chain (TSA certificate and intermediates first, root last) `openssl ts -verify` checks a
token offline. The built-in TSA's chain is read from its data dir (TSA certificate + its root, as
its GET /certs serves it); any other TSA's from the `untrusted` and `roots` files of its config.
Used by the API (bundles) and by the worker; no Flask here.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography import x509

from service.errors import ConfigError
from service.settings import Settings
from service.timestamping.tsa_config import (
    BUILTIN_ROOT_FILE,
    TSAConfig,
    load_trust,
    load_tsa_configs_for,
)
from service.wiring import Services

BUILTIN_TSA_CERT_FILE = "tsa-cert.pem"  # next to the built-in root (tsa_keys.py layout)
MAX_PEM_FILE_BYTES = 1024 * 1024  # a few certificates are kilobytes


@lru_cache(maxsize=8)
def _configs(settings: Settings) -> dict[str, TSAConfig]:
    return {c.name: c for c in load_tsa_configs_for(settings, os.environ)}


def _read_pem(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_PEM_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read certificate file {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_PEM_FILE_BYTES or b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(f"{path} is not a PEM certificate file")
    text = data.decode("ascii")
    return text if text.endswith("\n") else text + "\n"


def chain_paths(tsa: TSAConfig, data_dir: Path) -> list[Path]:
    """The PEM files of `tsa`'s chain in order: TSA certificate, intermediates, roots."""
    paths = [*tsa.untrusted, *tsa.roots]
    builtin_root = data_dir / BUILTIN_ROOT_FILE
    if builtin_root in tsa.roots:  # the built-in TSA: its own certificate sits beside its root
        paths.insert(0, builtin_root.parent / BUILTIN_TSA_CERT_FILE)
    return paths


def tsa_chain_pem(services: Services, tsa_name: str) -> str:
    """The PEM chain for tokens of `tsa_name`; ConfigError when that TSA is not configured."""
    tsa = _configs(services.settings).get(tsa_name)
    if tsa is None:
        raise ConfigError(f"TSA {tsa_name!r} is not configured; its chain is unknown")
    return "".join(_read_pem(p) for p in chain_paths(tsa, services.settings.data_path))


def trusted_roots(services: Services) -> list[x509.Certificate]:
    """The roots of every configured TSA, enabled or not (old tokens stay verifiable).

    What the service itself trusts when it verifies a bundle (POST /v1/verify): never the roots
    a bundle brings along. A TSA whose root file cannot be read (the built-in TSA before its
    first start) adds nothing.
    """
    roots: list[x509.Certificate] = []
    for tsa in _configs(services.settings).values():
        try:
            roots += load_trust(tsa)[0]
        except ConfigError:
            continue
    return roots
