"""POST /v1/verify: bundles and receipt ids, checked against the service's configured TSA roots.

Receipts are stamped here through the storage layer with a real openssl TSA (claim_batch, a
Merkle tree, store_batch_result), as the worker does; the bundle is then built by the API.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from service.evidence.templates.verify import token_facts
from service.storage import NewToken, claim_batch
from service.timestamping.merkle import MerkleTree
from service.usecases.stamping.results import store_batch_result
from service.web.verify import MAX_JSON_BYTES
from tests.e2e.conftest import Api
from tests.integration import test_bundle as _bundle_tests
from tests.integration.test_bundle import Evidence, chain_of
from tests.integration.test_bundle_check import TAMPERED, rezip
from tests.integration.test_bundle_layout import AMBIGUOUS
from tests.support.openssl_pki import OpenSSLPKI, make_openssl_pki, make_query

evidence = _bundle_tests.evidence  # two openssl TSAs over a 3-leaf tree (test_bundle.py)
TSA = "test-tsa"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> OpenSSLPKI:
    return make_openssl_pki(tmp_path_factory.mktemp("verify-pki"), intermediate=True)


@pytest.fixture
def verify_api(make_api: Callable[..., Api], tmp_path: Path, pki: OpenSSLPKI,
               evidence: Evidence) -> Api:
    """The API configured with our TSA and with the roots of test_bundle's two TSAs."""
    config = tmp_path / "tsas.toml"
    tables = [(TSA, pki.root_pem)]
    for name, chain in evidence.chains.items():
        root = tmp_path / f"{hashlib.sha256(name.encode()).hexdigest()[:8]}.pem"
        root.write_text(chain[chain.rindex("-----BEGIN CERTIFICATE-----"):])
        tables.append((f"evidence-{root.stem}", root))
    config.write_text("".join(f'[[tsa]]\nname = "{n}"\nurl = "http://127.0.0.1:1/"\n'
                              f'roots = "{r}"\n' for n, r in tables))
    return make_api(tsa_config=(str(config),), tsas=(TSA,))


def stamp_now(api: Api, pki: OpenSSLPKI) -> None:
    """Do the worker's job for every pending receipt: one batch, one token from `pki`."""
    batch = claim_batch(api.services.engine, 100, "test", 60)
    assert batch is not None
    tree = MerkleTree([bytes.fromhex(d) for d in batch.manifest_digests])
    reply = pki.reply(make_query(digest=tree.root))
    facts = token_facts(reply)
    proofs = {leaf.receipt_id: [p.hex() for p in tree.inclusion_proof(leaf.index)]
              for leaf in batch.leaves}
    chain = pki.chain_pem.read_text() + pki.root_pem.read_text()
    store_batch_result(api.services.engine, batch.id, tree.root.hex(), proofs,
                       [NewToken(TSA, reply, facts.gen_time, facts.serial, chain)], 1)


def register(api: Api, image: bytes, public: bool) -> str:
    body = {"sha256": hashlib.sha256(image).hexdigest(), "public": public,
            "metadata": {"prompt": "a secret prompt"}}
    posted = api.client.post("/v1/stamps", json=body, headers=api.auth)
    assert posted.status_code == 202, posted.get_data(as_text=True)
    return posted.get_json()["id"]


def post_verify(api: Api, headers: dict[str, str] | None = None, **parts) -> object:
    form = {k: (io.BytesIO(v), k) if isinstance(v, bytes) else v for k, v in parts.items()}
    return api.client.post("/v1/verify", data=form, content_type="multipart/form-data",
                           headers=headers or {})


def test_an_uploaded_bundle_verifies_without_a_key(verify_api: Api, evidence: Evidence) -> None:
    answer = post_verify(verify_api, image=evidence.image, bundle=evidence.bundle())
    assert answer.status_code == 200, answer.get_data(as_text=True)
    verdict = answer.get_json()
    assert verdict["valid"] and verdict["image_checked"] and verdict["trust"] == "given roots"
    assert {t["tsa"] for t in verdict["timestamps"]} == {"Example_TSA__", "chronoseal-builtin"}


@pytest.mark.parametrize("kind", TAMPERED)
def test_tampering_is_rejected_with_a_reason(verify_api: Api, evidence: Evidence, pki: OpenSSLPKI,
                                             kind: str) -> None:
    failed_check, change = TAMPERED[kind]
    image = evidence.image + (b"\x00" if kind == "image" else b"")
    data = evidence.bundle()
    if kind == "untrusted TSA":  # a consistent bundle from a TSA the service does not trust
        stranger = make_openssl_pki(verify_api.services.settings.data_path / "stranger")
        token = stranger.reply(make_query(digest=evidence.tree.root))
        data = evidence.bundle(tokens={"chronoseal-builtin": token},
                               chains={"chronoseal-builtin": chain_of(stranger)})
    if change is not None:
        data = rezip(data, change)
    answer = post_verify(verify_api, image=image, bundle=data)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    verdict = answer.get_json()
    assert not verdict["valid"]
    assert any(r.startswith(failed_check + ":") for r in verdict["reasons"]), verdict["reasons"]


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_an_ambiguous_bundle_is_invalid_with_a_reason(verify_api: Api, evidence: Evidence,
                                                      kind: str) -> None:
    forge, reason = AMBIGUOUS[kind]
    answer = post_verify(verify_api, image=evidence.image, bundle=forge(evidence.bundle()))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    verdict = answer.get_json()
    assert not verdict["valid"]
    assert any(r.startswith("layout:") and reason in r for r in verdict["reasons"]), verdict


def test_a_receipt_id_answers_in_full_for_its_owner(verify_api: Api, pki: OpenSSLPKI) -> None:
    image = b"owner's image"
    receipt_id = register(verify_api, image, public=False)
    pending = post_verify(verify_api, verify_api.auth, receipt_id=receipt_id)
    assert pending.status_code == 409 and pending.get_json()["type"].endswith("not-ready")
    stamp_now(verify_api, pki)
    answer = verify_api.client.post(
        "/v1/verify", json={"receipt_id": receipt_id, "sha256": hashlib.sha256(image).hexdigest()},
        headers=verify_api.auth)
    verdict = answer.get_json()
    assert answer.status_code == 200 and verdict["valid"], verdict
    assert verdict["manifest"]["generation"]["prompt"] == "a secret prompt"
    wrong = post_verify(verify_api, verify_api.auth, receipt_id=receipt_id, image=b"other")
    assert wrong.get_json()["valid"] is False
    assert wrong.get_json()["reasons"][0].startswith("image:")


def test_a_receipt_id_without_the_key_reveals_nothing_private(verify_api: Api,
                                                              pki: OpenSSLPKI) -> None:
    private = register(verify_api, b"private image", public=False)
    public = register(verify_api, b"public image", public=True)
    stamp_now(verify_api, pki)
    _, other_secret = verify_api.new_key()
    for headers in ({}, {"Authorization": f"Bearer {other_secret}"}):
        hidden = post_verify(verify_api, headers, receipt_id=private)
        assert hidden.status_code == 404, hidden.get_data(as_text=True)
        unknown = post_verify(verify_api, headers, receipt_id="rcp_unknown")
        assert unknown.get_json() == hidden.get_json()
        answer = post_verify(verify_api, headers, receipt_id=public, image=b"public image")
        verdict = answer.get_json()
        assert answer.status_code == 200 and verdict["valid"] is True
        assert set(verdict) == {"valid", "image_checked", "failed_checks", "timestamps"}
        assert "secret" not in answer.get_data(as_text=True)
        assert [t["tsa"] for t in verdict["timestamps"]] == [TSA]
        wrong = post_verify(verify_api, headers, receipt_id=public, image=b"another image")
        assert wrong.get_json()["failed_checks"] == ["image"]
    bad_key = post_verify(verify_api, {"Authorization": "Bearer cs_nope"}, receipt_id=public)
    assert bad_key.status_code == 401


@pytest.mark.parametrize(
    ("parts", "status", "slug"),
    [
        ({}, 400, "invalid-field"),
        ({"receipt_id": "rcp_x", "bundle": b"PK"}, 400, "invalid-field"),
        ({"bundle": b"not a zip"}, 400, "invalid-field"),
        ({"bundle": b"PK", "sha256": "xyz"}, 400, "invalid-digest"),
        ({"bundle": b"PK", "sha256": "00" * 32, "image": b"x"}, 400, "invalid-field"),
        ({"bundle": b"PK", "colour": "red"}, 400, "invalid-field"),
        ({"bundle": b"PK" * (2 * 1024 * 1024 + 1)}, 413, "payload-too-large"),
    ],
)
def test_unusable_requests_are_problems(verify_api: Api, parts, status: int, slug: str) -> None:
    answer = post_verify(verify_api, **parts)
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["type"] == f"urn:chronoseal:problem:{slug}"


def test_json_bodies_are_bounded_and_plain_bodies_refused(verify_api: Api) -> None:
    body = json.dumps({"receipt_id": "x" * MAX_JSON_BYTES})
    big = verify_api.client.post("/v1/verify", data=body, content_type="application/json")
    assert big.status_code == 413
    plain = verify_api.client.post("/v1/verify", data="hi", content_type="text/plain")
    assert plain.status_code == 415


def test_partial_chain_makes_a_configured_intermediate_an_anchor(
        make_api: Callable[..., Api], tmp_path: Path, evidence: Evidence) -> None:
    """A TSA configured with its intermediate as root verifies only when partial_chain asks."""
    pki = make_openssl_pki(tmp_path / "pki", key="ec-p256", intermediate=True)
    assert pki.intermediate_pem is not None
    config = tmp_path / "tsas.toml"
    config.write_text(f'[[tsa]]\nname = "mid"\nurl = "http://127.0.0.1:1/"\n'
                      f'roots = "{pki.intermediate_pem}"\n')
    api = make_api(tsa_config=(str(config),), tsas=("mid",))
    token = pki.reply(make_query(digest=evidence.tree.root))
    bundle = evidence.bundle(tokens={"mid": token}, chains={"mid": chain_of(pki)})
    strict = post_verify(api, bundle=bundle).get_json()
    assert not strict["valid"]
    assert any("partial chain" in r for r in strict["reasons"]), strict["reasons"]
    for value in ("true", "1"):
        answer = post_verify(api, bundle=bundle, partial_chain=value)
        verdict = answer.get_json()
        assert answer.status_code == 200 and verdict["valid"], verdict
        assert verdict["timestamps"][0]["trusted_root"] == (
            "CN=Test Intermediate CA,O=Chronoseal Test")
    assert not post_verify(api, bundle=bundle, partial_chain="false").get_json()["valid"]
    bad = post_verify(api, bundle=bundle, partial_chain="yes please")
    assert bad.status_code == 400 and bad.get_json()["type"].endswith("invalid-field")
    bad_json = api.client.post("/v1/verify", json={"receipt_id": "rcp_x", "partial_chain": "1"})
    assert bad_json.status_code == 400 and bad_json.get_json()["type"].endswith("invalid-field")
