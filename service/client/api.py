"""HTTP calls of the `chronoseal stamp` client: register, read a receipt, fetch its bundle.

The API key travels only in the Authorization header; no message built here contains it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
import requests.adapters

from service.client.upload import MultipartFile
from service.errors import ChronosealError

CONNECT_TIMEOUT_S = 5.0  # a server that does not accept a connection in 5 s is down
READ_TIMEOUT_S = 120.0  # an upload of a large image over a slow link, hashed as it streams
MAX_BUNDLE_BYTES = 4 * 1024 * 1024  # as evidence.bundle_check: real bundles are ~30 KiB
USER_AGENT = "chronoseal-stamp/1"
POOL_CONNECTIONS = 16  # the run's threads (hashing needs none): uploads or fetches, plus two
PROBE_ID = "rcp_access_check"  # no receipt has it: the answer only proves the key works


class ClientError(ChronosealError):
    """The server refused a request or could not be reached; the message says why.

    `retryable`: the same request may succeed later (unreachable, 429, 5xx); `fatal`: no
    request of this run can succeed (the key is refused), so a run stops at the first.
    `status`: the HTTP status, None when no answer came."""

    def __init__(self, message: str, *, retryable: bool = False, fatal: bool = False,
                 unreachable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.fatal = fatal
        self.unreachable = unreachable
        self.status = status


class StampClient:
    """A requests session on one server, with one key."""

    def __init__(self, server: str, key: str, connections: int = POOL_CONNECTIONS) -> None:
        self.server = server.rstrip("/")
        self.session = requests.Session()
        # One pool shared by the run's threads: keep-alive connections, at most `connections`.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=connections)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
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
                        extra: Mapping[str, Any] | None = None,
                        record: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST only the digest and the records (JSON): the image never leaves this machine.
        `record` is the one read from the file here (the server merges it as its own);
        `extra`: further registration fields (session, parents, private_record)."""
        body = {**(extra or {}), **digest_item(sha256, metadata, record)}
        return self._json("POST", "/v1/stamps", json=body,
                          headers={"Idempotency-Key": idempotency_key})

    def register_batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST /v1/stamps/batch: one result per item, {"status", "receipt" | "problem"}."""
        body = self._json("POST", "/v1/stamps/batch", json={"items": items})
        results = body.get("items")
        if not isinstance(results, list) or len(results) != len(items):
            raise ClientError("POST /v1/stamps/batch: not one result per item")
        return results

    def wait(self, ids: list[str], wait_s: float) -> dict[str, Any]:
        """POST /v1/stamps/wait: the receipts among `ids` that are stamped or failed, once
        there is one or after `wait_s`; also `pending` and `unknown` ids."""
        return self._json("POST", "/v1/stamps/wait", json={"ids": ids, "wait_s": wait_s},
                          timeout=(CONNECT_TIMEOUT_S, wait_s + READ_TIMEOUT_S))

    def bundles(self, ids: list[str], exhibit: bool = True
                ) -> tuple[dict[str, bytes], list[str]]:
        """POST /v1/stamps/bundles: the bundles of the stamped receipts among `ids` (by id),
        and the ids without one; `exhibit=False`: without certificate.html and .pdf."""
        body = self._json("POST", "/v1/stamps/bundles", json={"ids": ids, "exhibit": exhibit})
        found, missing = body.get("bundles"), body.get("missing")
        if not isinstance(found, dict) or not isinstance(missing, list):
            raise ClientError("POST /v1/stamps/bundles: not {bundles, missing}")
        out: dict[str, bytes] = {}
        for receipt_id, text in found.items():
            if not isinstance(text, str) or len(text) > MAX_BUNDLE_BYTES * 4 // 3 + 4:
                raise ClientError(f"the bundle of {receipt_id} is larger than "
                                  f"{MAX_BUNDLE_BYTES} bytes")
            try:
                out[str(receipt_id)] = base64.b64decode(text, validate=True)
            except ValueError as exc:
                raise ClientError(f"the bundle of {receipt_id} is not base64") from exc
        return out, [str(i) for i in missing]

    def check_access(self) -> None:
        """One cheap request that needs the key: ClientError (fatal or unreachable) early,
        instead of one failure per file."""
        self.wait([PROBE_ID], 0)

    def receipt(self, receipt_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/stamps/{receipt_id}")

    def bundle(self, receipt_id: str, history: bool = False) -> bytes:
        """The bundle ZIP; `history`: with each earlier iteration's evidence (history/)."""
        response = self._send("GET", f"/v1/stamps/{receipt_id}/bundle", stream=True,
                              params={"history": "true"} if history else None)
        return _bounded_body(response, "the bundle")

    def certificate(self, receipt_id: str, kind: str, language: str | None = None) -> bytes:
        """The receipt's certificate.`kind` ("html" or "pdf"), as its bundle would carry it;
        `language` (en, zh): the server's choice when None."""
        response = self._send("GET", f"/v1/stamps/{receipt_id}/certificate.{kind}",
                              stream=True, params={"lang": language} if language else None)
        return _bounded_body(response, f"certificate.{kind}")

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
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
        try:
            response = self.session.request(method, self.server + path, **kwargs)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach {self.server}: {type(exc).__name__}",
                              retryable=True, unreachable=True) from exc
        if response.status_code >= 400:
            raise ClientError(_problem_text(response), status=response.status_code,
                              retryable=response.status_code in (429, 502, 503, 504),
                              fatal=response.status_code in (401, 403))
        return response


def _bounded_body(response: requests.Response, what: str) -> bytes:
    """The answer's body, refused past MAX_BUNDLE_BYTES (a server cannot fill our memory)."""
    data = response.raw.read(MAX_BUNDLE_BYTES + 1, decode_content=True)
    if len(data) > MAX_BUNDLE_BYTES:
        raise ClientError(f"{what} is larger than {MAX_BUNDLE_BYTES} bytes")
    return bytes(data)


def digest_item(sha256: str, metadata: dict[str, Any], record: dict[str, Any] | None,
                idempotency_key: str | None = None) -> dict[str, Any]:
    """A digest registration's JSON: the single route's body, or one batch item."""
    body: dict[str, Any] = {"sha256": sha256, "metadata": metadata}
    if record:
        body["record"] = record
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    return body


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
