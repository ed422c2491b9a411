"""certificate.html: a human-readable summary of a bundle; the proof itself is verify.py.

Everything shown comes from the caller's record (prompts, ids, names), so every value is
HTML-escaped, and a Content-Security-Policy forbids scripts and remote loads even if one slips by.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from service.evidence.facts import BundleFacts, TimestampFacts
from service.evidence.generation import GENERATION_FIELDS

_STYLE = """
body{font-family:Georgia,serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-weight:normal;border-bottom:2px solid #333;padding-bottom:.3rem}
h2{font-size:1.1rem;margin-top:2rem;text-transform:uppercase;letter-spacing:.05em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;
padding:.3rem .5rem;border-bottom:1px solid #ddd}th{width:12rem;font-weight:normal;color:#555}
code,pre{font-family:Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all;
white-space:pre-wrap}.note{color:#555;font-size:.9rem}
.digest{font-size:1rem;padding:.5rem;border:1px solid #333;display:block;margin:.5rem 0}
ol li{margin:.4rem 0}
@page{size:A4;margin:16mm 14mm}
@media print{body{margin:0;max-width:none;font-size:10pt}h2,h3{break-after:avoid;margin-top:1.2rem}
tr,pre,li,.digest{break-inside:avoid}code,pre{font-size:8pt}th{width:10rem}}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def render_certificate(facts: BundleFacts) -> str:
    """The certificate page for one receipt, in plain HTML with inline style."""
    m = facts.manifest
    image = m.get("image", {})
    generation = m.get("generation", {})
    sections = [
        _table("Image", [
            ("SHA-256", _code(image.get("sha256"))),
            ("Size (bytes)", _text(image.get("size"))),
            ("Media type", _text(image.get("media_type"))),
            ("File name", _text(facts.image_name)),
        ]),
        _table("Registration", [
            ("Receipt", _code(facts.receipt_id)),
            ("Submitted (server clock)", _text(m.get("submitted_at"))),
            ("External id", _text(m.get("external_id"))),
            ("Manifest digest", _code(facts.manifest_digest)),
        ]),
        _table(_generation_title(generation), [
            (name.replace("_", " ").capitalize(), _text(generation.get(name)))
            for name in GENERATION_FIELDS
        ] + [("Source", _text(generation.get("source")))] + _conflict_rows(generation)),
        "<h3>Original record</h3><pre>"
        + escape(json.dumps(generation.get("raw", {}), indent=2, ensure_ascii=False)) + "</pre>",
        _table("Timestamps (RFC 3161)", [
            (t.name, f"{escape(f'{t.gen_time:%Y-%m-%d %H:%M:%S} UTC')}<br>signed by "
             f"{escape(t.subject)}<br>"
             f"serial {escape(str(t.serial))}, policy {_code(t.policy)}<br>"
             f"root certificate SHA-256 {_code(t.root_fingerprint)}<br>"
             f"{escape(_revocation_text(t))}")
            for t in facts.timestamps
        ]),
        _table("Merkle inclusion proof (RFC 9162, SHA-256)", [
            ("Leaf index / tree size", _text(f"{facts.proof['leaf_index']} of "
                                             f"{facts.proof['tree_size']}")),
            ("Leaf", _code(facts.proof["leaf"])),
            ("Audit path", "<br>".join(_code(p) for p in facts.proof["audit_path"]) or "(none)"),
            *[(f"Step {n}", f"SHA-256(01 {_code(st.left)} {_code(st.right)})<br>= "
               f"{_code(st.result)}") for n, st in enumerate(facts.steps, 1)],
            ("Root (timestamped)" if facts.batch_head is None else "Root",
             _code(facts.proof["root"])),
            *([("Batch head (timestamped)", f"SHA-256(batch-head.json) = "
                f"{_code(facts.batch_head.imprint.hex())}: root and tree size "
                f"{facts.batch_head.tree_size}, batch {_text(facts.batch_head.batch_id)}")]
              if facts.batch_head is not None else []),
        ]),
        _verification_steps(facts),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">"
        f"<title>Chronoseal certificate {escape(facts.receipt_id)}</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>Certificate of registration</h1>\n"
        "<p class=\"note\">The image with the digest below, with the generation record stated "
        "for it, was part of a manifest that the Time Stamp Authorities named below signed at "
        "the times shown. This page summarises the bundle; <code>verify.py</code> and "
        "<code>VERIFY.md</code> in the same bundle prove it. The record is what the submitter "
        "stated: the timestamp shows when, not that it is true.</p>\n"
        f"<p>Image SHA-256<code class=\"digest\">{escape(str(image.get('sha256')))}</code>"
        f"Earliest timestamp: {escape(_earliest(facts))}</p>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def _generation_title(generation: dict[str, Any]) -> str:
    if "sources" in generation:  # a record read from the image file, merged with the request's
        return "Generation record (read from the image file and as stated by the submitter)"
    return "Generation record (as stated by the submitter)"


def _conflict_rows(generation: dict[str, Any]) -> list[tuple[str, str]]:
    """Fields the image file and the request state differently: both values, side by side."""
    conflicts = generation.get("conflicts")
    return [
        (f"Differs: {c.get('field')}",
         f"image file: {_text(c.get('file'))}<br>request: {_text(c.get('request'))}")
        for c in (conflicts if isinstance(conflicts, list) else [])
        if isinstance(c, dict)
    ]


def _earliest(facts: BundleFacts) -> str:
    if not facts.timestamps:
        return "none"
    first = min(facts.timestamps, key=lambda t: t.gen_time)
    return f"{first.gen_time:%Y-%m-%d %H:%M:%S} UTC ({first.name})"


def _verification_steps(facts: BundleFacts) -> str:
    """The checks verify.py makes, in words; VERIFY.md has them as commands."""
    p = facts.proof
    imprint = "-data batch-head.json" if facts.batch_head is not None else "-digest ROOT"
    steps = [
        "Compute the SHA-256 of the image file you hold (<code>sha256sum IMAGE</code>). It must "
        "equal the image SHA-256 above, which <code>manifest.json</code> records.",
        "Compute the SHA-256 of <code>manifest.json</code> exactly as stored (do not re-save "
        f"it). It must be the manifest digest {_code(facts.manifest_digest)}.",
        "Hash one zero byte followed by that digest: the result must be the leaf "
        f"{_code(p['leaf'])}.",
        f"Fold the audit path as in the steps above ({len(facts.steps)} step(s), each "
        "SHA-256 of 0x01 and two values): the last value must be the root "
        f"{_code(p['root'])}.",
        *([f"Check that <code>batch-head.json</code> states the root above and the tree size "
           f"{facts.batch_head.tree_size}; its SHA-256 is what the TSAs signed."]
          if facts.batch_head is not None else []),
        *[f"Run <code>openssl ts -verify {imprint} -in tokens/{escape(t.name)}.tsr -CAfile "
          f"ROOT_CERT.pem</code>; it must print "
          f"<code>Verification: OK</code>. Trust the TSA's root only after comparing its "
          f"fingerprint {_code(t.root_fingerprint)} with the one {escape(t.name)} publishes."
          for t in facts.timestamps],
    ]
    items = "".join(f"<li>{s}</li>" for s in steps)
    return ("<h2>How to verify</h2><p class=\"note\">Offline, in the unzipped bundle: "
            "<code>python3 verify.py --image IMAGE --ca ROOTS.pem</code> makes every check "
            "below; <code>VERIFY.md</code> gives each one as a command.</p>"
            f"<ol>{items}</ol>")


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    """A titled two-column table; cells are HTML already, headers are escaped here."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<h2>{escape(title)}</h2><table>{body}</table>"


def _text(value: Any) -> str:
    if value is None:
        return "<span class=\"note\">not stated</span>"
    return escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _code(value: Any) -> str:
    return f"<code>{escape(str(value))}</code>" if value is not None else _text(None)


def _revocation_text(t: TimestampFacts) -> str:
    """Whether the bundle can show the TSA's certificates were not revoked at the token's time."""
    have = sum(1 for *_, member in t.revocation if member)
    if not t.revocation:
        return "revocation: the chain has no certificate below its root"
    if have == len(t.revocation):
        return "revocation data from stamping time is in the bundle (checked by verify.py)"
    return (f"no revocation data was available for {len(t.revocation) - have} of "
            f"{len(t.revocation)} certificate(s): whether they were revoked is not shown")
