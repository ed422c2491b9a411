"""TSA client against the built-in TSA (service.web.tsa in a thread), configured as shipped."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from service.errors import TSARejectedError
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.client import request_token
from service.timestamping.merkle import MerkleTree, verify_inclusion
from service.timestamping.tsa_config import (
    TSAConfig,
    default_config_paths,
    enabled_tsas,
    load_trust,
    load_tsa_configs,
)
from service.timestamping.tsa_keys import KeyType
from service.web.tsa import create_app, serve_in_thread
from tests.support.openssl_pki import openssl_ts_verify


@pytest.fixture(scope="module", params=[KeyType.EC_P256, KeyType.RSA_3072], ids=str)
def builtin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TSAConfig, Path]]:
    """The shipped 'builtin' TSA definition, pointed at a built-in TSA on a free port."""
    data_dir = tmp_path_factory.mktemp("data")
    # cli/tsa.py keeps the built-in TSA's keys in <data_dir>/tsa; config says roots = "builtin"
    authority = TimeStampAuthority.open(
        AuthoritySettings(data_dir=data_dir / "tsa", key_type=request.param)
    )
    with serve_in_thread(create_app(authority)) as server:
        (tsa,) = enabled_tsas(load_tsa_configs(default_config_paths(), env={}, data_dir=data_dir))
        assert tsa.name == "builtin"
        yield replace(tsa, url=server.url + "/"), data_dir


def test_batch_root_stamped_by_builtin_tsa(builtin: tuple[TSAConfig, Path]) -> None:
    tsa, data_dir = builtin
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    tree = MerkleTree(digests)
    roots, untrusted = load_trust(tsa)
    result = request_token(tsa, tree.root, roots=roots, untrusted=untrusted)
    assert result.verdict.valid and result.tsa == "builtin"
    assert result.verdict.facts.hashed_message == tree.root
    assert openssl_ts_verify(
        result.reply, digest=tree.root, ca_pem=data_dir / "tsa" / "root-cert.pem"
    )
    assert verify_inclusion(digests[3], 3, 5, tree.inclusion_proof(3), tree.root)


def test_serials_differ_between_tokens(builtin: tuple[TSAConfig, Path]) -> None:
    tsa, _ = builtin
    roots, _ = load_trust(tsa)
    serials = {request_token(tsa, bytes(32), roots=roots).serial for _ in range(3)}
    assert len(serials) == 3


def test_builtin_rejects_unknown_policy(builtin: tuple[TSAConfig, Path]) -> None:
    tsa, _ = builtin
    roots, _ = load_trust(tsa)
    with pytest.raises(TSARejectedError) as info:
        request_token(replace(tsa, policy="1.2.3.4.5"), bytes(32), roots=roots)
    assert info.value.fail_info == ["unacceptedPolicy"]
