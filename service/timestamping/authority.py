"""The built-in RFC 3161 Time Stamp Authority: query bytes in, TimeStampResp bytes out.

No HTTP here (service.web.tsa serves it). `respond` never raises for a bad query: anything the
TSA will not stamp is answered with a TimeStampResp whose status is rejection and whose failInfo
says why, as RFC 3161 section 2.4.2 asks.

    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=Path("data/tsa")))
    reply_der = authority.respond(query_der)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from service.timestamping import der
from service.timestamping.serials import SerialAllocator
from service.timestamping.tsa_crl import build_crl, read_revoked
from service.timestamping.tsa_keys import KeyType, TSAKeyMaterial, load_or_create
from service.timestamping.tsa_query import FailInfo, QueryRejectedError, parse_query
from service.timestamping.tsa_token import (
    Accuracy,
    TokenSigner,
    granted_response,
    rejection_response,
)

log = logging.getLogger(__name__)

# Chronoseal's TSA policy: an OID under the UUID arc 2.25 (ITU-T X.667), which needs no
# registration and cannot collide with anyone else's policy.
DEFAULT_POLICY_OID = "2.25.4540642716593568086136246496693745403"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuthoritySettings:
    """How the built-in TSA signs; the defaults are what `chronoseal tsa` uses."""

    data_dir: Path
    # ECDSA P-256 by default: fast to sign, small tokens; rsa-3072 for RSA-only relying parties.
    key_type: KeyType = KeyType.EC_P256
    # Written into every token whose query names no policy.
    policy_oid: str = DEFAULT_POLICY_OID
    # Further policies a query's reqPolicy may name; anything else is unacceptedPolicy.
    extra_policies: tuple[str, ...] = ()
    # The host clock is assumed NTP-disciplined to well within a second.
    accuracy: Accuracy = field(default_factory=Accuracy)
    # signing-time duplicates genTime but some CMS tooling displays only this attribute.
    signing_time: bool = True
    # Written as the CRL distribution point into a TSA certificate created from now on (where
    # this TSA serves GET /crl); None writes none. An existing certificate is kept as it is.
    crl_url: str | None = None


class TimeStampAuthority:
    """Stamps queries with one key; share one instance between threads (it is thread-safe)."""

    def __init__(self, settings: AuthoritySettings, material: TSAKeyMaterial,
                 serials: SerialAllocator, clock: Callable[[], datetime] = _utc_now) -> None:
        self.settings = settings
        self.material = material
        self._serials = serials
        self._clock = clock
        self._signer = TokenSigner(material, accuracy=settings.accuracy,
                                   signing_time=settings.signing_time)
        self._policies = {p: der.oid(p) for p in (settings.policy_oid, *settings.extra_policies)}
        self._default_policy = self._policies[settings.policy_oid]
        self._certs_pem = b"".join(c.public_bytes(serialization.Encoding.PEM)
                                   for c in material.chain)

    @classmethod
    def open(cls, settings: AuthoritySettings) -> TimeStampAuthority:
        """Load (or on first start create) the keys in settings.data_dir and get ready to sign."""
        material = load_or_create(settings.data_dir, settings.key_type, settings.crl_url)
        return cls(settings, material, SerialAllocator(settings.data_dir))

    def certs_pem(self) -> bytes:
        """The PEM chain a relying party needs: TSA certificate first, root last."""
        return self._certs_pem

    def crl_der(self) -> bytes | None:
        """The root's current DER CRL (revoked.json as it is now), None without a root key."""
        root_key = self.material.root_key
        if root_key is None:
            return None
        return build_crl(root_key, self.material.root_cert,
                         read_revoked(self.settings.data_dir), self._clock())

    def respond(self, query_der: bytes) -> bytes:
        """A DER TimeStampResp for a DER TimeStampReq: granted with a token, or a rejection."""
        try:
            query = parse_query(query_der)
            if query.req_policy is None:
                policy = self._default_policy
            elif query.req_policy in self._policies:
                policy = self._policies[query.req_policy]
            else:
                raise QueryRejectedError(FailInfo.UNACCEPTED_POLICY,
                                         f"policy {query.req_policy} is not accepted")
            token = self._signer.sign(query, policy=policy, serial=self._serials.next(),
                                      gen_time=self._clock())
            return granted_response(token)
        except QueryRejectedError as exc:
            log.info("timestamp query rejected: %s", exc)
            return rejection_response(exc.fail_info, str(exc))
        except Exception:
            # A bug or a failing disk must still produce an RFC 3161 answer, not a dropped
            # connection; the cause goes to the log, the client only learns systemFailure.
            log.exception("timestamp query failed")
            return rejection_response(FailInfo.SYSTEM_FAILURE, "internal error")
