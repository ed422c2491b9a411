"""Verify an image (or its digest) against an evidence bundle or a stored receipt.

The service trusts only the roots of the TSAs it is configured with, never roots a bundle
brings along. A receipt is checked through the bundle it would hand out, so the service's
verdict on a receipt id and anyone's verdict on the downloaded bundle cannot differ.
"""

from __future__ import annotations

from service.errors import InvalidInputError, MalformedInputError
from service.evidence.bundle_check import BundleVerdict, check_bundle
from service.timestamping.tsa_config import trusted_roots
from service.usecases.receipts import readable_receipt, receipt_bundle
from service.wiring import Services


def verify_bundle(services: Services, bundle: bytes, image_sha256: str | None, *,
                  partial_chain: bool = False) -> BundleVerdict:
    """The verdict on `bundle` (and the image, when its digest is given).

    `partial_chain` makes configured roots that are not self-signed (an intermediate, a TSA
    certificate) trust anchors too, as `openssl ts -verify -partial_chain` does.
    """
    try:
        return check_bundle(bundle, image_sha256=image_sha256,
                            roots=trusted_roots(services.settings), partial_chain=partial_chain)
    except MalformedInputError as exc:
        raise InvalidInputError(f"bundle: {exc}") from exc


def verify_receipt(services: Services, receipt_id: str, caller: str | None,
                   image_sha256: str | None, *, partial_chain: bool = False
                   ) -> tuple[BundleVerdict, bool]:
    """(verdict, full view?) on a receipt `caller` may read (see receipts.readable_receipt)."""
    receipt, full = readable_receipt(services, receipt_id, caller)
    return verify_bundle(services, receipt_bundle(services, receipt, exhibit=False), image_sha256,
                         partial_chain=partial_chain), full
