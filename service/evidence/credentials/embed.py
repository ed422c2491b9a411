"""Sign a copy of an image with a Chronoseal C2PA manifest (c2pa-python's Builder).

The claim is signed ES256 with Chronoseal's certificate (keys.py), and the SDK asks the TSA at
`ta_url` for an RFC 3161 token over the claim signature (C2PA's sigTst), so the credential
carries its own trusted time. Only that host may be reached. Embedding rewrites the metadata,
so the copy's bytes (and SHA-256) differ from the original's: the caller registers the copy.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service.errors import EmbedError
from service.evidence.c2pa_sdk import SDK_MEDIA_TYPES, SdkTimeoutError, run_bounded, sdk_context
from service.evidence.credentials.keys import SigningMaterial

SIGN_TIMEOUT_S = 30.0  # signing is milliseconds; the TSA round trip is what may take long
MEDIA_TYPES = SDK_MEDIA_TYPES
__all__ = ["MEDIA_TYPES", "EmbedError", "LocalSigner", "embed"]


@dataclass(frozen=True)
class LocalSigner:
    """What `chronoseal stamp --embed` signs with: the material and the claim TSA's URL."""

    material: SigningMaterial
    ta_url: str


def embed(image: bytes, media_type: str, definition: dict[str, Any],
          material: SigningMaterial, ta_url: str | None) -> bytes:
    """`image` with a manifest from `definition`, signed and (with `ta_url`) time-stamped."""
    if media_type not in MEDIA_TYPES:
        raise EmbedError(f"cannot embed Content Credentials in {media_type}")
    settings: dict[str, Any] = {
        # The SDK checks what it just wrote against its trust list, which has not got our
        # root: checked instead by whoever reads the copy, with the root published.
        "verify": {"verify_after_sign": False, "remote_manifest_fetch": False,
                   "ocsp_fetch": False},
        "core": {"allowed_network_hosts": [_host(ta_url)] if ta_url else []},
    }

    def call() -> bytes:
        import c2pa

        info = c2pa.C2paSignerInfo(b"es256", material.chain_pem, material.key_pem,
                                   ta_url.encode() if ta_url else None)
        with c2pa.Signer.from_info(info) as signer, \
                c2pa.Builder(definition, context=sdk_context(settings)) as builder:
            out = io.BytesIO()
            builder.sign(signer, media_type, io.BytesIO(image), out)
            return out.getvalue()

    try:
        return run_bounded(call, SIGN_TIMEOUT_S)
    except SdkTimeoutError as exc:
        raise EmbedError("signing the Content Credentials timed out") from exc
    except Exception as exc:  # c2pa.C2paError: TSA unreachable, image unreadable
        raise EmbedError(f"signing the Content Credentials failed: {exc}") from exc


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
