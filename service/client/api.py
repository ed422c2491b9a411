"""HTTP calls of the `chronoseal stamp` client: register, read a receipt, fetch its bundle.

The API key travels only in the Authorization header; no message built here contains it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from service.client.upload import MultipartFile
from service.errors import ChronosealError

CONNECT_TIMEOUT_S = 5.0  # a server that does not accept a connection in 5 s is down
READ_TIMEOUT_S = 120.0  # an upload of a large image over a slow link, hashed as it streams
MAX_BUNDLE_BYTES = 4 * 1024 * 1024  # as evidence.bundle_check: real bundles are ~30 KiB
USER_AGENT = "chronoseal-stamp/1"


class ClientError(ChronosealError):
    """The server refused a request or could not be reached; the message says why."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None,
                 ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status  # the HTTP status, None when no answer came


class StampClient:
    """A requests session on one server, with one key."""

    def __init__(self, server: str, key: str) -> None:
        self.server = server.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT})

    def register_upload(self, path: Path, metadata: dict[str, Any], idempotency_key: str,
                        extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST the image itself (multipart); the server hashes it and reads its record.
        `extra`: further fields (session, parents, private_record), sent as JSON text."""
        fields = {"metadata": json.dumps(metadata)} if metadata else {}
        fields.update({k: v if isinstance(v, str) else json.dumps(v)
                       for k, v in (extra or {}).items()})
        with MultipartFile(path, "image", fields) as body:  # streamed from disk, not loaded
            return self._json("POST", "/v1/stamps", data=body, headers={
                "Idempotency-Key": idempotency_key, "Content-Type": body.content_type})

    def register_digest(self, sha256: str, metadata: dict[str, Any], idempotency_key: str,
                        extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST only the digest and the record (JSON): the image never leaves this machine."""
        return self._json("POST", "/v1/stamps", json={"sha256": sha256, "metadata": metadata,
                                                      **(extra or {})},
                          headers={"Idempotency-Key": idempotency_key})

    def receipt(self, receipt_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/stamps/{receipt_id}")

    def bundle(self, receipt_id: str, history: bool = False) -> bytes:
        """The bundle ZIP; `history`: with each earlier iteration's evidence (history/)."""
        response = self._send("GET", f"/v1/stamps/{receipt_id}/bundle", stream=True,
                              params={"history": "true"} if history else None)
        data = response.raw.read(MAX_BUNDLE_BYTES + 1, decode_content=True)
        if len(data) > MAX_BUNDLE_BYTES:
            raise ClientError(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        return bytes(data)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise ClientError(f"{method} {path}: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ClientError(f"{method} {path}: the answer is not a JSON object")
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, self.server + path,
                                            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), **kwargs)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach {self.server}: {type(exc).__name__}",
                              retryable=True) from exc
        if response.status_code >= 400:
            raise ClientError(_problem_text(response), status=response.status_code,
                              retryable=response.status_code in (429, 502, 503, 504))
        return response


def _problem_text(response: requests.Response) -> str:
    """'HTTP 413 payload-too-large: detail' from a problem+json answer, or the status alone."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        slug = str(body.get("type", "")).rsplit(":", 1)[-1]
        detail = body.get("detail") or body.get("title") or ""
        return f"HTTP {response.status_code} {slug}: {detail}".strip()
    return f"HTTP {response.status_code}"
