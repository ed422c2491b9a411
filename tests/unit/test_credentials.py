"""Content Credentials pieces without a service: the signing keys made once and kept, the
manifest definition (private records give commitments only), signing without a reachable TSA."""

from __future__ import annotations

import io
import socket
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.errors import ConfigError, EmbedError
from service.evidence.credentials.definition import (
    GENERATION_LABEL,
    RegistrationFacts,
    TokenTime,
    generation_assertion,
    manifest_definition,
)
from service.evidence.credentials.embed import embed
from service.evidence.credentials.keys import load_existing, load_or_create
from service.evidence.records import c2pa
from tests.support.c2pa_files import plain_image

FACTS = RegistrationFacts.of(
    "rcp_1", {"v": 1, "image": {"sha256": "ab" * 32}, "submitted_at": "2026-01-01T00:00:00.000Z",
              "generation": {"prompt": "a fox", "seed": 7, "software": "ComfyUI", "raw": {}}},
    "cd" * 32, {"root": "ef" * 32}, [TokenTime("builtin", "2026-01-01T00:00:01.000Z", "1")],
    "http://example.test/v1/stamps/rcp_1/bundle", None)


def test_signing_keys_are_made_once_then_loaded(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    again = load_or_create(tmp_path)
    assert first == again == load_existing(tmp_path)
    for name in ("root-key.pem", "signer-key.pem"):
        assert stat.S_IMODE((tmp_path / "c2pa" / name).stat().st_mode) == 0o600
    signer, root = x509.load_pem_x509_certificates(first.chain_pem)
    assert root.public_bytes(Encoding.PEM) == first.root_pem
    assert signer.issuer == root.subject
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_client_never_makes_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no C2PA signing keys"):
        load_existing(tmp_path)
    assert not (tmp_path / "c2pa").exists()


def test_private_records_give_commitments_only() -> None:
    private = {"commitments": {"prompt": "sha256:…"}, "model": "secret-model"}
    assert generation_assertion(private) == {"commitments": {"prompt": "sha256:…"}}
    assert generation_assertion({"prompt": "a fox", "raw": {"x": 1}}) == {"prompt": "a fox"}


def test_definition_states_creation_registration_and_record() -> None:
    definition = manifest_definition(FACTS)
    labels = [a["label"] for a in definition["assertions"]]
    assert labels == ["c2pa.actions", "org.chronoseal.registration", GENERATION_LABEL]
    [created] = definition["assertions"][0]["data"]["actions"]
    assert created["softwareAgent"] == {"name": "ComfyUI"}
    assert definition["assertions"][2]["data"] == {"prompt": "a fox", "seed": 7,
                                                   "software": "ComfyUI"}


def test_a_signed_copy_reads_back_and_an_unreachable_tsa_fails_cleanly(tmp_path: Path) -> None:
    material = load_or_create(tmp_path)
    image = plain_image("jpeg")
    copy = embed(image, "image/jpeg", manifest_definition(FACTS), material, None)
    facts = c2pa.read_c2pa(io.BytesIO(copy), [], trust_anchors_pem=material.root_pem.decode())
    assert facts["validation"]["state"] == "Trusted"
    assert facts["chronoseal_registration"] == {"receipt_id": "rcp_1",
                                                "manifest_digest": "cd" * 32}
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(EmbedError):
        embed(image, "image/jpeg", manifest_definition(FACTS), material,
              f"http://127.0.0.1:{port}/")
    with pytest.raises(EmbedError):
        embed(b"GIF89a", "image/gif", manifest_definition(FACTS), material, None)
