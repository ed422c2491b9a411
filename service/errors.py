"""One error hierarchy for Chronoseal; third-party exceptions are wrapped at the boundary.

Every class here (and in the packages' own errors modules) has one row in the web layer's
problem table (service.web.problems.DOMAIN_PROBLEMS): type, status, and whether its message
is written for the client. tests/unit/test_problem_table.py walks the hierarchy to keep it so.
"""

from __future__ import annotations


class ChronosealError(Exception):
    """Base of every error Chronoseal raises on purpose."""


class ConfigError(ChronosealError):
    """Settings or a config file are missing or inconsistent."""


class VerificationError(ChronosealError):
    """A check on a token, proof or bundle failed."""


class MalformedInputError(ChronosealError):
    """Input cannot be parsed at all (not DER, not a token, wrong digest length...)."""


class InvalidInputError(ChronosealError):
    """A field is missing, out of range or not allowed here; the message says which (public)."""


class NotFoundError(ChronosealError):
    """No such resource for this caller (another key's resource is not found either)."""


class NotReadyError(ChronosealError):
    """The resource exists but is not in the state the request needs (a receipt not stamped)."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class UploadTooLargeError(ChronosealError):
    """An upload grew past the configured byte limit; the rest of it was not read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"upload exceeds the limit of {limit} bytes")
        self.limit = limit


class ImageDecodeError(ChronosealError):
    """The bytes are not an image that can be decoded (perceptual hashing needs pixels)."""


class ImageBombError(ImageDecodeError):
    """The image declares more pixels than the decoding limit; it was not decoded."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"image has more than {limit} pixels")
        self.limit = limit


class RetryLaterError(ChronosealError):
    """The request is fine but cannot be served now; `retry_after_s` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimitedError(RetryLaterError):
    """Too many requests for a key or an address in the current window; retry after a while."""


class DecodeBusyError(RetryLaterError):
    """This process is decoding as many pixels as its memory budget allows; try again soon."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many images are being decoded; try again shortly", retry_after_s)


class DiskFullError(RetryLaterError):
    """The data directory has no room for what the request would write; nothing was kept."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the data directory is out of space; nothing was stored",
                         retry_after_s)


class MetadataError(ChronosealError):
    """A generation record or manifest field is out of bounds or not representable in JCS."""


class TSAError(ChronosealError):
    """A Time Stamp Authority did not give a usable token. Subclasses say why."""

    retryable: bool = True

    def __init__(self, tsa: str, message: str) -> None:
        super().__init__(f"{tsa}: {message}")
        self.tsa = tsa


class TSATransportError(TSAError):
    """Connection refused, reset, DNS failure or timeout: retry with backoff."""


class TSAHTTPStatusError(TSAError):
    """The TSA answered with a non-2xx HTTP status (5xx and 429 are worth retrying)."""

    def __init__(self, tsa: str, status: int) -> None:
        super().__init__(tsa, f"HTTP status {status}")
        self.status = status
        self.retryable = status >= 500 or status == 429


class TSARejectedError(TSAError):
    """PKIStatus rejection/waiting; its failInfo says why. Not retried blindly."""

    retryable = False

    def __init__(self, tsa: str, status: str, fail_info: list[str], text: str = "") -> None:
        detail = ", ".join(fail_info) or "no failInfo"
        super().__init__(tsa, f"rejected ({status}: {detail}){' ' + text if text else ''}")
        self.status = status
        self.fail_info = fail_info


class TSAMalformedReplyError(TSAError):
    """The reply is not a TimeStampResp (wrong content type, garbage, truncated)."""


class TSAVerificationError(TSAError, VerificationError):
    """The reply parsed but did not verify (imprint, nonce, signature, chain...)."""

    def __init__(self, tsa: str, reasons: list[str]) -> None:
        super().__init__(tsa, "token did not verify: " + "; ".join(reasons))
        self.reasons = reasons


class StorageError(ChronosealError):
    """The database refused or could not serve a request (wraps SQLAlchemy errors)."""


class DatabaseUnavailableError(StorageError):
    """The database did not answer a health check."""


class IdempotencyConflictError(StorageError):
    """An Idempotency-Key was reused with a different request; the first receipt stands."""

    def __init__(self, api_key_id: str, idempotency_key: str, receipt_id: str) -> None:
        super().__init__(f"idempotency key {idempotency_key!r} already used for another request")
        self.api_key_id = api_key_id
        self.idempotency_key = idempotency_key
        self.receipt_id = receipt_id


class AmbiguousKeyError(StorageError):
    """A key prefix matched more than one API key; give the key id instead."""


class BatchStateError(StorageError):
    """A batch operation does not fit the batch's state (unknown batch, different root...)."""


# Content Credentials (issue 17)
class ImageNotKeptError(ChronosealError):
    """The registered image's bytes are not kept (a digest-only registration, or dropped after
    hashing without CHRONOSEAL_KEEP_IMAGES): nothing to embed a credential in."""


class EmbedError(ChronosealError):
    """The C2PA SDK could not sign the copy (its TSA did not answer, or the image is unusable)."""
