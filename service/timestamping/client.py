"""RFC 3161 client: ask one TSA for a token over a digest, and accept it only once verified.

Fetching and verifying are separate: `fetch_reply` moves bytes (query out, granted reply back,
every failure typed), `verify` judges the reply with `verify_timestamp`, and `request_token`
composes the two. The imprint is the caller's digest itself (for a batch: the Merkle root),
hashed with nothing else, under the TSA's configured hash algorithm.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import requests
import rfc3161ng
from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, univ

from service.errors import (
    MalformedInputError,
    TSAHTTPStatusError,
    TSAMalformedReplyError,
    TSARejectedError,
    TSATransportError,
    TSAVerificationError,
)
from service.timestamping.tsa_config import HASH_SIZES, TSAConfig
from service.timestamping.tsa_query import encode_query
from service.timestamping.verdict import Verdict
from service.timestamping.verify import verify_timestamp

log = logging.getLogger(__name__)

QUERY_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"
# Lenient: old servers say timestamp-response or octet-stream, some say nothing at all.
ACCEPTED_REPLY_TYPES = frozenset(
    {REPLY_MEDIA_TYPE, "application/timestamp-response", "application/octet-stream", ""}
)
NONCE_BITS = 64  # RFC 3161 2.4.1: a large random nonce; 64 bits make a replayed match negligible
MAX_REPLY_BYTES = 256 * 1024  # real replies are 2-10 KB (token plus chain); bounds memory per call
READ_CHUNK_BYTES = 16 * 1024  # streaming granularity for the size and time checks
MAX_STATUS_TEXT = 300  # characters of the TSA's statusString kept in an error (TSA-controlled text)
_GRANTED = {0: "granted", 1: "grantedWithMods"}
_NOT_GRANTED = {2: "rejection", 3: "waiting", 4: "revocationWarning", 5: "revocationNotification"}
_FAIL_INFO_NAMES = {int(v): n for n, v in rfc3161ng.PKIFailureInfo.namedValues.items()}


@dataclass(frozen=True)
class TimestampQuery:
    """A DER TimeStampReq (tsa_query.encode_query) and what we must find echoed in the token."""

    der: bytes
    digest: bytes
    hash_alg: str
    nonce: int
    policy: str | None


@dataclass(frozen=True)
class TimestampResult:
    """A verified token from one TSA: the DER TimeStampResp as received and what it says."""

    tsa: str
    reply: bytes
    verdict: Verdict
    nonce: int
    gen_time: datetime
    serial: int


def build_query(tsa: TSAConfig, digest: bytes, *, nonce: int | None = None) -> TimestampQuery:
    """A TimeStampReq over `digest`: v1, tsa.hash_alg, random nonce, certReq true, policy."""
    expected = HASH_SIZES[tsa.hash_alg]
    if not isinstance(digest, bytes) or len(digest) != expected:
        raise MalformedInputError(f"{tsa.name}: a {tsa.hash_alg} digest is {expected} bytes")
    if nonce is None:
        nonce = secrets.randbits(NONCE_BITS)
    query = encode_query(
        digest,
        hash_name=tsa.hash_alg,
        nonce=nonce,
        cert_req=True,  # the token must carry the TSA certificate
        policy=tsa.policy,
    )
    return TimestampQuery(query, digest, tsa.hash_alg, nonce, tsa.policy)


def fetch_reply(
    tsa: TSAConfig, query_der: bytes, *, session: requests.Session | None = None
) -> bytes:
    """POST the query to the TSA and return its DER TimeStampResp once its status is granted.

    Raises TSATransportError, TSAHTTPStatusError, TSAMalformedReplyError or TSARejectedError.
    """
    own = session is None
    http = requests.Session() if session is None else session
    try:
        body = _post(tsa, query_der, http)
    finally:
        if own:
            http.close()
    check_status(tsa.name, body)
    return body


def check_status(tsa_name: str, reply: bytes) -> None:
    """Read the PKIStatusInfo of a TimeStampResp; raise unless it is granted with a token."""
    try:
        resp, rest = decoder.decode(reply, asn1Spec=_OuterResp())
    except (PyAsn1Error, ValueError, TypeError, RecursionError) as exc:
        raise TSAMalformedReplyError(tsa_name, f"not a TimeStampResp ({exc})"[:200]) from exc
    if rest:
        raise TSAMalformedReplyError(tsa_name, f"{len(rest)} bytes after the TimeStampResp")
    info = resp["status"]
    status = int(info["status"])
    has_token = resp["timeStampToken"].isValue
    if status in _GRANTED and has_token:
        return
    if status in _GRANTED:
        raise TSAMalformedReplyError(tsa_name, f"status {_GRANTED[status]} without a token")
    if status not in _NOT_GRANTED:
        raise TSAMalformedReplyError(tsa_name, f"unknown PKIStatus {status}")
    if has_token and status in (4, 5):
        return  # a revocation warning still carries a token: the verifier decides
    fail_info = []
    if info["failInfo"].isValue:
        fail_info = [
            _FAIL_INFO_NAMES.get(i, f"bit{i}") for i, bit in enumerate(info["failInfo"]) if bit
        ]
    text = ""
    if info["statusString"].isValue:
        text = "; ".join(str(s) for s in info["statusString"])[:MAX_STATUS_TEXT]
    raise TSARejectedError(tsa_name, _NOT_GRANTED[status], fail_info, text)


def verify(
    tsa: TSAConfig,
    reply: bytes,
    *,
    digest: bytes,
    nonce: int,
    roots: Sequence[x509.Certificate],
    untrusted: Sequence[x509.Certificate] = (),
) -> Verdict:
    """Judge a reply: imprint, our nonce, the TSA's policy if configured, signature and chain."""
    try:
        return verify_timestamp(
            reply,
            digest=digest,
            hash_alg=tsa.hash_alg,
            roots=roots,
            untrusted=untrusted,
            nonce=nonce,
            policy=tsa.policy,
        )
    except MalformedInputError as exc:
        raise TSAMalformedReplyError(tsa.name, str(exc)) from exc


def request_token(
    tsa: TSAConfig,
    digest: bytes,
    *,
    roots: Sequence[x509.Certificate],
    untrusted: Sequence[x509.Certificate] = (),
    session: requests.Session | None = None,
) -> TimestampResult:
    """Get a token over `digest` from `tsa` and return it only if it verifies (else raise)."""
    query = build_query(tsa, digest)
    reply = fetch_reply(tsa, query.der, session=session)
    verdict = verify(tsa, reply, digest=digest, nonce=query.nonce, roots=roots, untrusted=untrusted)
    facts = verdict.facts
    if not verdict.valid or facts.gen_time is None or facts.serial is None:
        raise TSAVerificationError(tsa.name, list(verdict.reasons) or ["no genTime or serial"])
    log.debug("token from %s: serial %s, genTime %s", tsa.name, facts.serial, facts.gen_time)
    return TimestampResult(tsa.name, reply, verdict, query.nonce, facts.gen_time, facts.serial)


def _post(tsa: TSAConfig, query_der: bytes, http: requests.Session) -> bytes:
    """One POST with explicit timeouts, no redirects and a bounded, time-limited body read."""
    try:
        response = http.post(
            tsa.url,
            data=query_der,
            headers={"Content-Type": QUERY_MEDIA_TYPE, "Accept": REPLY_MEDIA_TYPE},
            auth=tsa.auth,
            timeout=tsa.timeout,
            allow_redirects=False,  # a TSA that moved is a configuration change, not a hop
            stream=True,
        )
    except requests.RequestException as exc:
        raise TSATransportError(tsa.name, f"{type(exc).__name__}: {exc}") from exc
    with response:
        if not 200 <= response.status_code < 300:
            raise TSAHTTPStatusError(tsa.name, response.status_code)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type not in ACCEPTED_REPLY_TYPES:
            raise TSAMalformedReplyError(tsa.name, f"Content-Type {media_type!r} is not a reply")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
            raise TSAMalformedReplyError(tsa.name, f"reply larger than {MAX_REPLY_BYTES} bytes")
        return _read_bounded(tsa, response)


def _read_bounded(tsa: TSAConfig, response: requests.Response) -> bytes:
    # The read timeout bounds each socket read; this deadline bounds a server that drips bytes.
    deadline = time.monotonic() + tsa.read_timeout_s
    body = bytearray()
    try:
        for chunk in response.iter_content(READ_CHUNK_BYTES):
            body += chunk
            if len(body) > MAX_REPLY_BYTES:
                raise TSAMalformedReplyError(tsa.name, f"reply larger than {MAX_REPLY_BYTES} bytes")
            if time.monotonic() > deadline:
                raise TSATransportError(tsa.name, f"reply took over {tsa.read_timeout_s:g} s")
    except requests.RequestException as exc:
        raise TSATransportError(tsa.name, f"{type(exc).__name__}: {exc}") from exc
    return bytes(body)


class _OuterResp(univ.Sequence):  # type: ignore[misc]  # pyasn1 is untyped
    """TimeStampResp with the token left opaque: the status is read here, the token verified."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("status", rfc3161ng.PKIStatusInfo()),
        namedtype.OptionalNamedType("timeStampToken", univ.Any()),
    )
