"""VERIFY.md: the checks verify.py makes, as plain commands an expert witness can run and explain.

Values expected at each step are written out, so each command's output can be compared by eye.
Only hex strings, integers and sanitised TSA names reach the commands: no caller text is pasted
into anything a reader might copy into a shell.
"""

from __future__ import annotations

import re
from typing import Any

from service.evidence.facts import AuditStep, BundleFacts, TimestampFacts

_UNSAFE_TEXT = re.compile(r"[^\w .,()+-]")
VERIFY_HEADING = "# Verifying Chronoseal receipt "  # VERIFY.md's first line: it names the receipt
_HEADING_RECEIPT = re.compile(re.escape(VERIFY_HEADING) + r"(rcp_\w{1,64})\n")


def receipt_named(verify_md: bytes) -> str | None:
    """The receipt id on VERIFY.md's first line, or None when that line is not ours. The bundle's
    own files name no receipt (the manifest is hashed before the receipt exists), and a client
    needs it to fetch what a bundle was written without (`chronoseal exhibit`)."""
    match = _HEADING_RECEIPT.match(verify_md[:256].decode("utf-8", "replace"))
    return match.group(1) if match else None


def render_verify_md(facts: BundleFacts) -> str:
    """The VERIFY.md text for one bundle."""
    p = facts.proof
    image_sha = facts.manifest.get("image", {}).get("sha256", "")
    registered = (
        f' (registered under the file name "{_UNSAFE_TEXT.sub("_", facts.image_name)}")'
        if facts.image_name else ""
    )
    out = [
        VERIFY_HEADING + _UNSAFE_TEXT.sub("_", facts.receipt_id),
        "",
        "This bundle shows that a manifest (a JSON record holding the SHA-256 digest of an image "
        "and the generation record stated for it) existed no later than the time signed by each "
        "Time Stamp Authority (TSA) below. Nothing here needs Chronoseal or a network connection.",
        "",
        "Tools: a shell, `openssl` (1.1 or 3.x), `sha256sum` (or `openssl dgst -sha256`) and, for "
        "step 4, `python3`. Unzip the bundle and run every command inside its directory.",
        "",
        "Quick check: `python3 verify.py --image IMAGE_FILE` runs all the steps below and prints "
        "each result (add `--ca ROOTS.pem` to trust your own copy of the TSA's root).",
        "",
        "Given the ZIP itself (`python3 verify.py --bundle ../BUNDLE.zip --image IMAGE_FILE`) "
        "it also checks what unzip hides: a member name given twice (unzip and other tools "
        "may read different copies), an absolute or `..` path, a link, or a file that is not "
        "part of a bundle. Any of these makes the bundle invalid.",
        "",
        "## 1. The image",
        "",
        f"The manifest records the image digest `{image_sha}`{registered}. Compute the digest of "
        "the image you hold; it must be the same:",
        "",
        "    " + IMAGE_COMMAND,
        "",
        "## 2. The manifest",
        "",
        "`manifest.json` is canonical JSON (RFC 8785). Its SHA-256 over the exact bytes of the "
        "file is the manifest digest. Do not open and re-save the file: any change to a byte "
        "changes the digest.",
        "",
        "    grep -o '\"sha256\":\"[0-9a-f]*\"' manifest.json   # the image digest of step 1",
        "    " + MANIFEST_COMMAND,
        "",
        f"Expected: `{facts.manifest_digest}`",
        "",
        "## 3. The Merkle leaf",
        "",
        "Many manifests are timestamped together in a Merkle tree (RFC 9162, section 2.1). The "
        "leaf for this manifest is SHA-256 of one zero byte followed by the manifest digest:",
        "",
        "    " + LEAF_COMMAND,
        "",
        f"Expected (the `leaf` in proof.json): `{p['leaf']}`",
        "",
        "## 4. From the leaf to the root",
        "",
        f"This manifest is leaf {p['leaf_index']} of a tree of {p['tree_size']} leaves. Each step "
        "below hashes one byte 0x01 and two 32-byte values; the value carried from the previous "
        "step (starting with the leaf) appears on the left or right as RFC 9162 section 2.1.3.2 "
        "prescribes.",
        "",
    ]
    for number, step in enumerate(facts.steps, 1):
        out += [
            f"Step {number}:",
            "",
            "    " + fold_command(step),
            "",
            f"Expected: `{step.result}`",
            "",
        ]
    if not facts.steps:
        out += ["The tree has one leaf, so the root is the leaf itself.", ""]
    head = facts.batch_head
    if head is None:
        out.append(f"The last value is the timestamped root (`root` in proof.json): "
                   f"`{p['root']}`.")
    else:
        out.append(f"The last value is the Merkle root (`root` in proof.json): `{p['root']}`.")
        out += [
            "",
            "## 5. The batch head",
            "",
            "The TSAs did not sign the root alone: they signed the SHA-256 of `batch-head.json`, "
            "canonical JSON stating the root, the tree size, the batch id and the time the batch "
            "closed. So the tree size is signed too. Show the root and size it states; they must "
            "be the root above and the tree size of step 4:",
            "",
            "    grep -o '\"root\":\"[0-9a-f]*\"' batch-head.json",
            "    grep -o '\"tree_size\":[0-9]*' batch-head.json",
            "",
            # The expected values are the proof's: a head stating another root or size shows.
            f"Expected: `\"root\":\"{p['root']}\"` and `\"tree_size\":{p['tree_size']}` "
            f"(leaf {p['leaf_index']} must be below {p['tree_size']}). Its digest is what "
            "each token imprints:",
            "",
            "    " + HEAD_COMMAND,
            "",
            f"Expected: `{head.imprint.hex()}`",
        ]
    out += ["", f"## {6 if head is not None else 5}. The timestamps"]
    for t in facts.timestamps:
        out += _token_section(t, p["root"], head is not None)
    out += _lineage_section(facts.manifest)
    out += [
        "",
        "## What this does and does not show",
        "",
        "A valid result shows that the manifest, and so the image digest and the generation "
        "record in it, existed no later than each token's time, as signed by that TSA. It does "
        "not show who made the image or that the generation record is accurate: the record is "
        "what the submitter stated. The TSA certificates are checked as they stood at the "
        "token's time (`-attime`), and their revocation status at that time from the CRLs "
        "fetched when the token was stored (`revocation/`); where the bundle holds none, "
        "whether a TSA key was revoked is not shown.",
        "",
        "Once a TSA certificate chain has expired, a token holds only with an RFC 4998 "
        "evidence record (`evidence-records/<tsa>.ers`, readable in `evidence-records/"
        "<tsa>.json`): archive timestamps, each over a hash tree covering the one before, "
        "each made before the earlier chain expired. The first one covers the token, each "
        "certificate of `certs/<tsa>.pem` and each `revocation/<tsa>/` member stored by then: "
        "its first hash list must hold their SHA-256 (`openssl dgst -sha256`; a certificate "
        "as DER) and nothing else. `python3 verify.py` checks them (add `--at TIME` to judge "
        "as of another time); the `.json` lists every hash list and chain, and which members "
        "the first list covers (`data_objects`) or not (`not_covered`: fetched later).",
        "",
    ]
    return "\n".join(out)


# The commands below are shared with certificate.html, which shows the same steps.
QUICK_CHECK = "python3 verify.py --image IMAGE_FILE"
IMAGE_COMMAND = "sha256sum IMAGE_FILE"
MANIFEST_COMMAND = "sha256sum manifest.json"
LEAF_COMMAND = ("{ printf '\\000'; openssl dgst -sha256 -binary manifest.json; } "
                "| openssl dgst -sha256")
HEAD_COMMAND = "sha256sum batch-head.json"


def fold_command(step: AuditStep) -> str:
    """One audit-path step as a command printing SHA-256(0x01 || left || right)."""
    return ("python3 -c \"import hashlib; print(hashlib.sha256(bytes.fromhex('01'"
            f" '{step.left}' '{step.right}')).hexdigest())\"")


def split_chain_command(t: TimestampFacts) -> str:
    """Split certs/<tsa>.pem into <tsa>-cert1.pem (the TSA's) .. <tsa>-cert<n>.pem (the root)."""
    return ("awk '/-----BEGIN CERTIFICATE-----/{n++} "
            f"{{print > (\"{t.name}-cert\" n \".pem\")}}' certs/{t.name}.pem")


def root_command(t: TimestampFacts) -> str:
    """Print the subject and SHA-256 fingerprint of the chain's root (after the split)."""
    return (f"openssl x509 -in {t.name}-cert{t.chain_length}.pem -noout -subject "
            "-fingerprint -sha256")


def token_verify_commands(t: TimestampFacts, root: str, headed: bool) -> list[str]:
    """`openssl ts -verify` of one token as of its own time (after the split), preceded by
    joining the certificates below the root into the untrusted list."""
    n, prefix = t.chain_length, f"{t.name}-cert"
    untrusted = " ".join(f"{prefix}{i}.pem" for i in range(1, n))
    imprint = "-data batch-head.json" if headed else f"-digest {root}"
    verify = (
        f"openssl ts -verify {imprint} -in tokens/{t.name}.tsr -CAfile {prefix}{n}.pem"
        + (f" -untrusted {t.name}-untrusted.pem" if n > 1 else "")
        + f" -attime {int(t.gen_time.timestamp())}"
    )
    return [*([f"cat {untrusted} > {t.name}-untrusted.pem"] if n > 1 else []), verify]


def _lineage_section(manifest: dict[str, Any]) -> list[str]:
    """Earlier iterations and a private record's commitments, when the manifest has them
    (docs/history.md): what to compare, by hand, beyond `python3 verify.py`."""
    out: list[str] = []
    parents = manifest.get("parents") or []
    if parents:
        out += ["", "## Earlier iterations", "",
                "The manifest names the images this one was made from (timestamped with it):", ""]
        out += [f"- receipt `{p['receipt']}`, manifest SHA-256 `{p['manifest_sha256']}`"
                if "receipt" in p else f"- image SHA-256 `{p.get('image_sha256')}`"
                for p in parents]
        out += ["", "A bundle fetched with `?history=true` carries each under `history/<receipt "
                "id>/` with the same files: repeat the steps above inside that directory, and "
                "`sha256sum history/<receipt id>/manifest.json` must be the digest named here. "
                "`python3 verify.py` does both and lists the iterations by time."]
    generation = manifest.get("generation")
    if isinstance(generation, dict) and generation.get("private") is True:
        names = ", ".join(f"`{n}`" for n in sorted(generation.get("commitments", {})))
        out += ["", "## Private record", "",
                f"The manifest holds salted commitments to {names}, not their values: each is "
                "SHA-256(salt || JCS(value)), the salt 16 random bytes. A `disclosure.json` "
                "(kept by the creator) opens some of them; recompute each from its salt and "
                "`jcs` text and compare with `generation.commitments` in manifest.json:", "",
                "    python3 -c 'import hashlib,json; d=json.load(open(\"disclosure.json\")); "
                "[print(n, hashlib.sha256(bytes.fromhex(f[\"salt\"]) + f[\"jcs\"].encode())"
                ".hexdigest()) for n, f in d[\"fields\"].items()]'"]
    return out


def _token_section(t: TimestampFacts, root: str, headed: bool) -> list[str]:
    n, prefix = t.chain_length, f"{t.name}-cert"
    signed = "the SHA-256 of batch-head.json (step 5)" if headed else "the root above"
    return [
        "",
        f"### From {t.name}",
        "",
        f"`tokens/{t.name}.tsr` is the TSA's RFC 3161 response; `certs/{t.name}.pem` its "
        f"certificate chain ({n} certificate(s): the TSA's first, the root last). Show what "
        f"the token states (its \"Message data\" must be {signed}):",
        "",
        f"    openssl ts -reply -in tokens/{t.name}.tsr -text",
        "",
        f"Expected time stamp: {t.gen_time:%Y-%m-%d %H:%M:%S} UTC, serial {t.serial}, policy "
        f"{t.policy}. Split the chain and look at the root:",
        "",
        "    " + split_chain_command(t),
        "    " + root_command(t),
        "",
        f"Expected fingerprint: `{t.root_fingerprint}`. Compare it with the one the TSA "
        "publishes: the bundle cannot vouch for its own root. Better still, use your own copy "
        f"of the TSA's root certificate in place of `{prefix}{n}.pem` below.",
        "",
        *("    " + line for line in token_verify_commands(t, root, headed)),
        "",
        "Expected: `Verification: OK`. OpenSSL has then checked that the token's imprint is "
        f"{signed}, that the TSA's signature over it is valid, and that the TSA certificate "
        "chains to the root and is authorised for timestamping. (OpenSSL may warn that the "
        "TSA certificate \"is not a CA cert\": expected, as it is in the untrusted list.)",
        *_revocation_lines(t),
    ]


def _revocation_lines(t: TimestampFacts) -> list[str]:
    """The revocation check of each certificate below the root, or plainly that there is none."""
    out = ["", f"Revocation at the token's time ({t.gen_time:%Y-%m-%d %H:%M:%S} UTC):"]
    for place, _sha256, serial, member in t.revocation:
        cert, issuer = f"{t.name}-cert{place}.pem", f"{t.name}-cert{place + 1}.pem"
        if not member:
            out += ["", f"Certificate {place} (serial {serial}): no revocation data was "
                    "available when the token was stored, so whether it was revoked is not "
                    "shown."]
            continue
        if member.endswith(".ocsp"):
            out += [
                "", f"Certificate {place} (serial {serial}), OCSP response `{member}`: openssl "
                "must say `Response verify OK`; \"Next Update\" must not be before the token's "
                "time, and the status `good`, or `revoked` after the token's time with reason "
                "unspecified, affiliationChanged, superseded or cessationOfOperation (RFC 3161 "
                "section 4; openssl may warn that the status times are not current: expected "
                "for a response kept since the token's time):",
                "",
                f"    openssl ocsp -respin {member} -issuer {issuer} -cert {cert} -VAfile "
                f"{issuer} -CAfile {t.name}-cert{t.chain_length}.pem -no_nonce",
            ]
            continue
        crl = member
        out += [
            "", f"Certificate {place} (serial {serial}), CRL `{crl}`: it must be signed by the "
            "issuer (`verify OK`), its nextUpdate must not be before the token's time, and the "
            "serial must be absent, or revoked after the token's time with reason unspecified, "
            "affiliationChanged, superseded or cessationOfOperation (RFC 3161 section 4):",
            "",
            f"    openssl crl -inform DER -in {crl} -noout -CAfile {issuer}",
            f"    openssl crl -inform DER -in {crl} -noout -lastupdate -nextupdate",
            f"    openssl x509 -in {cert} -noout -serial",
            f"    openssl crl -inform DER -in {crl} -noout -text | grep -A 4 'Serial Number: "
            f"{serial}' || echo 'serial {serial} not listed'",
        ]
    if not t.revocation:
        out += ["", "The chain has no certificate below its root."]
    return out
