"""The validation of a C2PA manifest as the SDK reports it, summed up per check.

C2PA 2.x (section 15) names each outcome with a status code: `claimSignature.validated` or
`claimSignature.mismatch`, `assertion.dataHash.match` or `.mismatch`, `timeStamp.validated`...
A check is "invalid" when any of its codes is a failure, "valid" when it has a success and no
failure, "absent" when the SDK said nothing of it (a claim without a timestamp). The SDK's own
verdict (`Invalid`, `Valid`, `Trusted`) is kept as `state`, and the failure codes as they are.
"""

from __future__ import annotations

from typing import Any

MAX_CODES = 32  # failure codes kept; a broken manifest lists a few per assertion
CHECKS = {
    "signature": ("claimSignature.",),
    "credential": ("signingCredential.",),
    "hard_binding": ("assertion.dataHash.", "assertion.bmffHash.", "assertion.boxesHash.",
                     "assertion.collectionHash."),
    "timestamp": ("timeStamp.",),
}
INFORMATIONAL_ONLY = ("signingCredential.ocsp.",)  # skipped revocation checks fail nothing


def read_validation(report: dict[str, Any]) -> dict[str, Any]:
    """{"state", "signature", "credential", "hard_binding", "timestamp", "failures"} of the
    active manifest, from the SDK's report (`validation_results`, else `validation_status`)."""
    success, failure = _codes(report)
    out: dict[str, Any] = {"state": str(report.get("validation_state") or "Invalid")}
    for check, prefixes in CHECKS.items():
        if any(c.startswith(prefixes) for c in failure):
            out[check] = "invalid"
        elif any(c.startswith(prefixes) for c in success):
            out[check] = "valid"
        else:
            out[check] = "absent"
    if failure:
        out["failures"] = failure[:MAX_CODES]
    return out


def _codes(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    results = report.get("validation_results")
    active = results.get("activeManifest") if isinstance(results, dict) else None
    if isinstance(active, dict):
        return _of(active.get("success")), [
            c for c in _of(active.get("failure")) if not c.startswith(INFORMATIONAL_ONLY)]
    # Older reports: one list of failures only.
    return [], _of(report.get("validation_status"))


def _of(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["code"]) for i in items if isinstance(i, dict) and "code" in i]
