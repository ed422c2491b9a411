"""Reading receipts: list with filters and cursors, a stamped receipt's proof, tokens and bundle.

A stamped receipt is made here without a worker: the test claims a batch, asks the built-in
TSA in-process for a token over the Merkle root and stores it, as the worker would.
"""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from service.storage import NewToken, claim_batch
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.client import build_query, verify
from service.timestamping.merkle import MerkleTree, verify_inclusion
from service.timestamping.tsa_config import TSAConfig, tsa_chain_pem
from service.usecases.stamping.results import store_batch_result
from tests.e2e.test_api_errors import assert_problem
from tests.support.images import png_bytes


def _register(api, n: int, **fields) -> list[str]:
    return [api.post_image(png_bytes(color=(i, 0, 0)), **fields).get_json()["id"]
            for i in range(n)]


def stamp_pending(api, tsa_name: str = "builtin", keep_chain: bool = False) -> str:
    """Batch every pending receipt, get a built-in TSA token over the root, store it."""
    services = api.services
    tsa_dir = services.settings.data_path / "tsa"
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=tsa_dir))
    batch = claim_batch(services.engine, max_size=100, owner="test", lease_s=60)
    assert batch is not None
    digests = [bytes.fromhex(d) for d in batch.manifest_digests]
    tree = MerkleTree(digests)
    config = TSAConfig(name="builtin", url="http://127.0.0.1:1/", enabled=True,
                       roots=(tsa_dir / "root-cert.pem",))
    query = build_query(config, tree.root)
    reply = authority.respond(query.der)
    verdict = verify(config, reply, digest=tree.root, nonce=query.nonce,
                     roots=[authority.material.root_cert])
    assert verdict.valid, verdict.reasons
    proofs = {leaf.receipt_id: [p.hex() for p in tree.inclusion_proof(leaf.index)]
              for leaf in batch.leaves}
    chain = "".join(c.public_bytes(Encoding.PEM).decode() for c in verdict.facts.chain)
    token = NewToken(tsa_name, reply, verdict.facts.gen_time, verdict.facts.serial,
                     chain if keep_chain else None)
    result = store_batch_result(services.engine, batch.id, tree.root.hex(), proofs, [token], 1)
    assert result.complete
    return batch.id


def test_list_is_newest_first_and_paginates(api):
    ids = _register(api, 5)
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/v1/stamps", headers=api.auth, query_string=query).get_json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


def test_list_filters_by_status_and_external_id(api):
    _register(api, 2)
    tagged = api.post_image(png_bytes(color=(9, 9, 9)), external_id="post-42").get_json()["id"]
    page = api.client.get("/v1/stamps?external_id=post-42", headers=api.auth).get_json()
    assert [item["id"] for item in page["items"]] == [tagged]
    assert len(api.client.get("/v1/stamps?status=pending", headers=api.auth).json["items"]) == 3
    assert api.client.get("/v1/stamps?status=stamped", headers=api.auth).json["items"] == []


def test_list_rejects_bad_parameters(api):
    for query in ("limit=0", "limit=101", "limit=x", "status=done", "cursor=!!", "cursor=eHl6"):
        assert_problem(api.client.get(f"/v1/stamps?{query}", headers=api.auth),
                       400, "invalid-field")


def test_pending_receipt_has_no_tokens_and_no_bundle(api):
    receipt_id = _register(api, 1)[0]
    assert api.client.get(f"/v1/stamps/{receipt_id}/tokens", headers=api.auth).json == {
        "tokens": []}
    assert_problem(api.client.get(f"/v1/stamps/{receipt_id}/tokens/builtin.tsr",
                                  headers=api.auth), 404, "not-found")
    body = assert_problem(api.client.get(f"/v1/stamps/{receipt_id}/bundle", headers=api.auth),
                          409, "not-ready")
    assert body["receipt_status"] == "pending"


def test_stamped_receipt_shows_proof_tokens_and_bundle(api):
    ids = _register(api, 3, metadata='{"prompt": "p"}')
    stamp_pending(api)
    receipt = api.client.get(f"/v1/stamps/{ids[1]}", headers=api.auth).get_json()
    assert receipt["status"] == "stamped" and receipt["stamped_at"].endswith("Z")
    proof = receipt["proof"]
    assert proof["leaf_index"] == 1 and proof["tree_size"] == 3
    assert verify_inclusion(bytes.fromhex(receipt["manifest_digest"]), 1, 3,
                            [bytes.fromhex(p) for p in proof["audit_path"]],
                            bytes.fromhex(proof["root"]))
    [token] = receipt["tokens"]
    assert token["tsa"] == "builtin" and token["serial"] and token["gen_time"].endswith("Z")

    tsr = api.client.get(token["links"]["self"], headers=api.auth)
    assert tsr.status_code == 200 and tsr.mimetype == "application/timestamp-reply"
    assert tsr.data == base64.b64decode(token["token"])

    bundle = api.client.get(receipt["links"]["bundle"], headers=api.auth)
    assert bundle.status_code == 200 and bundle.mimetype == "application/zip"
    assert "attachment" in bundle.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        names = set(archive.namelist())
        assert {"manifest.json", "proof.json", "tokens/builtin.tsr", "certs/builtin.pem"} <= names
        manifest = archive.read("manifest.json")
        assert archive.read("tokens/builtin.tsr") == tsr.data
        chain = tsa_chain_pem(api.services.settings, "builtin")
        assert archive.read("certs/builtin.pem").decode() == chain
    import hashlib

    assert hashlib.sha256(manifest).hexdigest() == receipt["manifest_digest"]
    page = api.client.get("/v1/stamps?status=stamped", headers=api.auth).get_json()
    assert sorted(item["id"] for item in page["items"]) == sorted(ids)


def test_builtin_chain_is_tsa_certificate_then_root(api):
    tsa_dir: Path = api.services.settings.data_path / "tsa"
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=tsa_dir))
    assert tsa_chain_pem(api.services.settings, "builtin").encode() == authority.certs_pem()


def test_bundle_ships_the_chain_stored_with_the_token_after_the_tsa_is_retired(api):
    """A TSA no longer in the configuration still has complete bundles: the chain validated
    when its token was stored travels with the token."""
    ids = _register(api, 2)
    stamp_pending(api, tsa_name="retired-tsa", keep_chain=True)
    tsa_dir: Path = api.services.settings.data_path / "tsa"
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=tsa_dir))
    receipt = api.client.get(f"/v1/stamps/{ids[0]}", headers=api.auth).get_json()
    bundle = api.client.get(receipt["links"]["bundle"], headers=api.auth)
    assert bundle.status_code == 200, bundle.data
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert archive.read("certs/retired-tsa.pem") == authority.certs_pem()
