"""Plain words for a verdict: what each check proves and what it does not, per check name.

Keys are BundleVerdict check names (service/evidence/bundle_check.py) or their prefix before
`:` (`token:freetsa` -> `token`). The texts are msgids of the pages' catalogs.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.evidence.bundle_check import BundleVerdict, Check


@dataclass(frozen=True)
class Explained:
    """One check as a person reads it."""

    name: str
    ok: bool | None
    proves: str
    not_proves: str
    detail: str | None  # the verifier's own words (full view only: they name digests)


NOT_AUTHORSHIP = "It does not prove who made the image, nor that it is original."
MEANING: dict[str, tuple[str, str]] = {
    "layout": ("The evidence bundle has the expected files and nothing else.",
               "It says nothing yet about what the files state."),
    "manifest": ("The record (manifest) is well formed and names the image's SHA-256 digest.",
                 "Fields taken from the request are the submitter's statement, not checked facts."),
    "image": ("The image you gave is, bit for bit, the one that was registered.",
              "A re-encoded, resized or edited copy does not match; use Find the original."),
    "leaf": ("The record is the one the proof starts from.",
             "It does not by itself give a time."),
    "proof": ("The record was part of the batch whose summary (Merkle root) was timestamped.",
              "It does not by itself give a time."),
    "batch-head": ("The timestamped batch head states that root and the batch's size.",
                   "It does not by itself give a time."),
    "tokens": ("The bundle holds timestamp tokens to check.", "Each token is checked below."),
    "token": ("A timestamp authority signed that the record existed at the time shown.",
              NOT_AUTHORSHIP),
    "revocation": ("The authority's certificates were not revoked at that time.",
                   "Not checked when the bundle carries no revocation data."),
    "renewal": ("The timestamp's evidence is still within its validity, or was renewed in time.",
                NOT_AUTHORSHIP),
}


def explain(check: Check, full: bool) -> Explained:
    """`check` with what it proves and does not; the technical detail only in the full view."""
    proves, not_proves = MEANING.get(check.name.split(":", 1)[0], ("", NOT_AUTHORSHIP))
    return Explained(check.name, check.ok, proves, not_proves, check.detail if full else None)


def explain_all(verdict: BundleVerdict, full: bool) -> list[Explained]:
    """Every check of the verdict, in the verifier's order."""
    return [explain(c, full) for c in verdict.checks]


def image_mismatch(verdict: BundleVerdict) -> bool:
    """True when an image was given and it is not the registered one."""
    return any(c.name == "image" and c.ok is False for c in verdict.checks)
