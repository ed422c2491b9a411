"""Shared pytest fixtures: factories that build what a test needs at test time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.openssl_pki import OpenSSLPKI, make_openssl_pki


@pytest.fixture(scope="session")
def openssl_pki(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., OpenSSLPKI]:
    """Factory `openssl_pki(key=..., intermediate=..., ...)` returning a PKI built by openssl.

    PKIs are cached per parameter set for the session: key generation is the slow part, and
    tests only read the PKI (issuing tokens does not change it beyond the serial file).
    """
    cache: dict[tuple[tuple[str, Any], ...], OpenSSLPKI] = {}

    def factory(**params: Any) -> OpenSSLPKI:
        cache_key = tuple(sorted(params.items()))
        if cache_key not in cache:
            name = "pki-" + "-".join(f"{k}_{v}" for k, v in cache_key) if cache_key else "pki"
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]  # config text as parameters
            cache[cache_key] = make_openssl_pki(tmp_path_factory.mktemp(name), **params)
        return cache[cache_key]

    return factory
