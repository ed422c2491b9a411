"""certificate.html: a human-readable summary of a bundle; the proof itself is verify.py.

Everything shown comes from the caller's record (prompts, ids, names), so every value is
HTML-escaped, and a Content-Security-Policy forbids scripts and remote loads even if one slips by.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from service.evidence.facts import BundleFacts
from service.evidence.generation import GENERATION_FIELDS

_STYLE = """
body{font-family:Georgia,serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-weight:normal;border-bottom:2px solid #333;padding-bottom:.3rem}
h2{font-size:1.1rem;margin-top:2rem;text-transform:uppercase;letter-spacing:.05em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;
padding:.3rem .5rem;border-bottom:1px solid #ddd}th{width:12rem;font-weight:normal;color:#555}
code,pre{font-family:Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all;
white-space:pre-wrap}.note{color:#555;font-size:.9rem}
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
        _table("Generation record (as stated by the submitter)", [
            (name.replace("_", " ").capitalize(), _text(generation.get(name)))
            for name in GENERATION_FIELDS
        ] + [("Source", _text(generation.get("source")))]),
        "<h3>Original record</h3><pre>"
        + escape(json.dumps(generation.get("raw", {}), indent=2, ensure_ascii=False)) + "</pre>",
        _table("Timestamps (RFC 3161)", [
            (t.name, f"{escape(f'{t.gen_time:%Y-%m-%d %H:%M:%S} UTC')}<br>signed by "
             f"{escape(t.subject)}<br>"
             f"serial {escape(str(t.serial))}, policy {_code(t.policy)}<br>"
             f"root certificate SHA-256 {_code(t.root_fingerprint)}")
            for t in facts.timestamps
        ]),
        _table("Merkle inclusion proof (RFC 9162, SHA-256)", [
            ("Leaf index / tree size", _text(f"{facts.proof['leaf_index']} of "
                                             f"{facts.proof['tree_size']}")),
            ("Leaf", _code(facts.proof["leaf"])),
            ("Audit path", "<br>".join(_code(p) for p in facts.proof["audit_path"]) or "(none)"),
            ("Root (timestamped)", _code(facts.proof["root"])),
        ]),
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
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


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
