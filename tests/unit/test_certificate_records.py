"""certificate.html shows where the generation record came from and what the two sides dispute."""

from __future__ import annotations

from service.evidence.certificate import render_certificate
from service.evidence.facts import BundleFacts


def facts(generation: dict) -> BundleFacts:
    manifest = {"v": 1, "image": {"sha256": "ab" * 32}, "generation": generation,
                "submitted_at": "2026-11-28T22:00:00.000Z"}
    proof = {"leaf_index": 0, "tree_size": 1, "root": "ef" * 32, "leaf": "ef" * 32,
             "audit_path": []}
    return BundleFacts(receipt_id="rcp_1", image_name=None, manifest=manifest,
                       manifest_digest="cd" * 32, proof=proof, steps=(), timestamps=())


def test_conflicts_are_listed_with_both_values() -> None:
    html = render_certificate(facts({
        "seed": 1, "source": "comfyui", "sources": {"file": {}, "request": {}},
        "raw": {"file": {}, "request": {}},
        "conflicts": [{"field": "seed", "file": 1, "request": "<b>2</b>"}],
    }))
    assert 'class="conflict"' in html  # the row is marked
    assert "1<br><strong>Disagreement: the submitter stated &lt;b&gt;2&lt;/b&gt;</strong>" in html


def test_request_only_record_keeps_its_title_and_mangled_conflicts_are_ignored() -> None:
    html = render_certificate(facts({"prompt": "x", "source": "request", "raw": {},
                                     "conflicts": "nonsense"}))
    assert '<td class="origin">stated in the request</td>' in html
    assert '<td class="origin">read from' not in html
    assert "Disagreement" not in html and 'class="conflict"' not in html
