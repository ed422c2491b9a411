"""Fetching revocation data for a token's chain when it is stored, and filling gaps later.

For every certificate of the validated chain below the root (timestamping.revocation.targets),
GET its CRL distribution point (or, naming none, its OCSP responder: RFC 6960 GET) through the
webhooks' SSRF guard and transport: the URL is resolved once and checked against the same deny
table, connected to at the checked address, no redirects, bounded in time and size. Hosts
admitted: `webhook_allowlist`, plus, for each configured TSA's chain, the host of that TSA's
URL — the operator already chose to reach it (the built-in TSA on 127.0.0.1 serves its CRL
itself). Answers are cached
per URL until their nextUpdate.

A failure never fails stamping: the certificate is stored as 'none' with the reason, and
`fill_missing` (run by every sweep) fetches again once REFILL_AFTER_S has passed; a CRL fetched
later still speaks for the token's genTime (see timestamping.revocation).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import Engine

from service.errors import ChronosealError
from service.settings import Settings
from service.storage import RevocationRow, store_revocation, tokens_missing_revocation
from service.storage.tables import utcnow
from service.timestamping.revocation import (
    KIND_CRL,
    KIND_NONE,
    KIND_OCSP,
    MAX_CRL_BYTES,
    MAX_OCSP_BYTES,
    RevocationTarget,
    next_update,
    ocsp_request,
    targets,
)
from service.timestamping.tsa_config import TSAConfig
from service.webhooks.errors import TransportError
from service.webhooks.ssrf import Allowlist, Resolver, check_url, system_resolver
from service.webhooks.transport import Timeouts, fetch

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # a CRL server that does not accept in 3 s is down; stamping waits on it
FETCH_TIMEOUT_S = 10.0  # one whole CRL download, MAX_CRL_BYTES at ~100 KB/s
BUDGET_S = 15.0  # all fetches for one token: the token waits for them before it is stored
# Distinct CRL URLs and OCSP requests of the configured TSAs' chains: a handful in practice.
MAX_CACHED_URLS = 256
MAX_CACHE_S = 24 * 3600  # a CRL without a usable nextUpdate is cached for at most a day
# A URL that failed is not asked again this long: a dead CRL server must not make every token
# of every batch wait for its connect timeout.
FAILURE_CACHE_S = 60.0
# A token stored without revocation data is fetched for again once this long has passed since
# the last try (by the sweep): often enough to fill gaps within the day, rare enough to be cheap.
REFILL_AFTER_S = 3600.0
TIMEOUTS = Timeouts(CONNECT_TIMEOUT_S, FETCH_TIMEOUT_S)
OCSP_MEDIA_TYPE = "application/ocsp-response"  # RFC 6960 appendix A
CRL_MEDIA_TYPES = "application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1"
FILL_BATCH = 100  # tokens re-fetched per pass; the cache makes tokens of one TSA cost one GET
_PEM_CRL = b"-----BEGIN X509 CRL-----"

Clock = Callable[[], datetime]


def fetcher_for(settings: Settings, tsas: Iterable[TSAConfig]) -> RevocationFetcher:
    """A fetcher admitting the webhook allowlist, and for each TSA's chain that TSA's own host."""
    return RevocationFetcher(Allowlist.parse(settings.webhook_allowlist),
                             tsa_hosts={t.name: urlsplit(t.url).hostname or "" for t in tsas})


class RevocationFetcher:
    """`collect(chain)` returns one RevocationRow per certificate below the root; thread-safe."""

    def __init__(self, allowlist: Allowlist, *, tsa_hosts: Mapping[str, str] | None = None,
                 resolver: Resolver = system_resolver,
                 timeouts: Timeouts = TIMEOUTS,
                 clock: Clock = utcnow) -> None:
        self.allowlist = allowlist
        # URLs in a TSA's chain may reach that TSA's own host (the operator chose to reach it),
        # not the host of another TSA: a certificate from one TSA cannot aim us at another's.
        self._allowlists = {
            name: Allowlist(allowlist.networks + extra.networks, allowlist.hosts | extra.hosts)
            for name, host in (tsa_hosts or {}).items() if host
            for extra in (Allowlist.parse([host]),)}
        self._resolver = resolver
        self._timeouts = timeouts
        self._clock = clock
        self._cache: dict[str, tuple[bytes, datetime]] = {}
        self._failed: dict[str, tuple[str, float]] = {}  # url -> (why, monotonic time to retry)
        self._lock = threading.Lock()

    def collect(self, chain: Sequence[x509.Certificate], tsa: str | None = None
                ) -> tuple[RevocationRow, ...]:
        """One row per certificate of `chain` below the root; `tsa` names whose chain it is."""
        deadline = time.monotonic() + BUDGET_S
        allowlist = self._allowlists.get(tsa or "", self.allowlist)
        return tuple(self._one(target, deadline, allowlist) for target in targets(chain))

    def _one(self, target: RevocationTarget, deadline: float, allowlist: Allowlist
             ) -> RevocationRow:
        # A CRL where the certificate names one (cached for every token of the TSA), else OCSP.
        asks = [(KIND_CRL, url) for url in target.crl_urls] or [
            (KIND_OCSP, url) for url in target.ocsp_urls]
        if not asks:
            return RevocationRow(target.cert_sha256, KIND_NONE, None, None,
                                 "the certificate names no CRL distribution point or OCSP "
                                 "responder")
        errors = []
        for kind, url in asks:
            if time.monotonic() > deadline:
                errors.append(f"{url}: time budget of {BUDGET_S:g} s used up")
                break
            try:
                der = (self.crl(url, allowlist) if kind == KIND_CRL
                       else self.ocsp(url, target, allowlist))
                return RevocationRow(target.cert_sha256, kind, url, der)
            except (ChronosealError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        note = "fetch failed: " + "; ".join(errors)
        log.info("no revocation data for %s: %s", target.cert.subject.rfc4514_string(), note)
        return RevocationRow(target.cert_sha256, KIND_NONE, asks[0][1], None, note)

    def crl(self, url: str, allowlist: Allowlist) -> bytes:
        """The DER CRL at `url`, from the cache while its nextUpdate has not passed."""
        return self._get(url, url, KIND_CRL, MAX_CRL_BYTES, CRL_MEDIA_TYPES, _der_crl,
                         allowlist)

    def ocsp(self, url: str, target: RevocationTarget, allowlist: Allowlist) -> bytes:
        """The DER OCSP response for the target, by GET (RFC 6960 A.1), cached likewise."""
        request = base64.b64encode(ocsp_request(target)).decode()
        get_url = url.rstrip("/") + "/" + quote(request, safe="")
        return self._get(get_url, url, KIND_OCSP, MAX_OCSP_BYTES, OCSP_MEDIA_TYPE, _der_ocsp,
                         allowlist)

    def _get(self, url: str, key: str, kind: str, limit: int, accept: str,
             parse: Callable[[bytes], bytes], allowlist: Allowlist) -> bytes:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and now < cached[1]:
                return cached[0]
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() < failed[1]:
                raise TransportError(f"{failed[0]} (not asked again for {FAILURE_CACHE_S:g} s)")
        target = check_url(url, allowlist, resolver=self._resolver)  # refusals cost no wait
        try:
            der = parse(fetch(target, limit, self._timeouts, accept=accept))
        except (ChronosealError, ValueError) as exc:
            with self._lock:
                self._failed[key] = (str(exc), time.monotonic() + FAILURE_CACHE_S)
            raise
        expires = min(next_update(kind, der) or now, now + timedelta(seconds=MAX_CACHE_S))
        with self._lock:
            if len(self._cache) >= MAX_CACHED_URLS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = (der, expires)
        return der


def _der_crl(body: bytes) -> bytes:
    """The body as a DER CRL (RFC 5280 says DER; some servers send PEM); ValueError if neither."""
    if body.lstrip().startswith(_PEM_CRL):
        return x509.load_pem_x509_crl(body).public_bytes(Encoding.DER)
    x509.load_der_x509_crl(body)  # parsed to refuse anything else; the bytes are kept as sent
    return body


def _der_ocsp(body: bytes) -> bytes:
    """The body if it is a successful OCSP response; ValueError (so not stored) otherwise."""
    status = ocsp.load_der_ocsp_response(body).response_status
    if status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError(f"the responder answered {status.name}")
    return body


def fill_missing(engine: Engine, fetcher: RevocationFetcher, *, now: datetime | None = None,
                 limit: int = FILL_BATCH) -> int:
    """Fetch again for tokens whose fetch failed REFILL_AFTER_S or more ago; returns how many
    certificates got a CRL. A failure is recorded again (its time too, so it waits again).

    A CRL fetched now still speaks for an earlier genTime: it lists every revocation before it,
    with its date (see timestamping.revocation).
    """
    now = now or utcnow()
    with engine.connect() as conn:
        missing = tokens_missing_revocation(conn, now - timedelta(seconds=REFILL_AFTER_S), limit)
    filled = 0
    for token in missing:
        if not token.chain_pem:
            continue
        rows = fetcher.collect(x509.load_pem_x509_certificates(token.chain_pem.encode()),
                               token.tsa)
        with engine.begin() as conn:
            store_revocation(conn, token.id, rows, now)
        filled += sum(row.kind in (KIND_CRL, KIND_OCSP) for row in rows)
    if filled:
        log.info("revocation data filled for %d certificate(s)", filled)
    return filled
