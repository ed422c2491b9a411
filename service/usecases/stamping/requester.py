"""Asking TSAs for tokens over a batch root: trust anchors, kept-alive sessions, one call.

The client (service.timestamping.client) fetches and verifies; this adds what a long-running
worker needs around it: each TSA's roots read once (the built-in TSA creates its root on first
start, which may come after the worker's, so a missing file is retried on the next call), and
one HTTP session per TSA and thread so connections are reused between batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.errors import ConfigError, TSAError
from service.storage.tokens import NewToken
from service.timestamping.client import request_token
from service.timestamping.tsa_config import TSAConfig, load_trust
from service.usecases.metrics import observe_tsa
from service.usecases.stamping.revocation import RevocationFetcher


class TrustUnavailableError(TSAError):
    """The TSA's roots cannot be read (yet): retried like a transport failure."""


class TokenRequester:
    """`requester(tsa, imprint)` returns a verified NewToken or raises a TSAError subclass.

    `imprint` is the 32 bytes to timestamp (SHA-256 of the batch head); the client's verifier
    checks that the reply's messageImprint is exactly these bytes before the token is kept.
    """

    def __init__(self, tsas: Sequence[TSAConfig],
                 revocation: RevocationFetcher | None = None) -> None:
        self.tsas = {tsa.name: tsa for tsa in tsas}
        self._revocation = revocation
        self._trust: dict[str, tuple[list[x509.Certificate], list[x509.Certificate]]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, tsa: TSAConfig, imprint: bytes) -> NewToken:
        started = time.perf_counter()
        try:
            roots, untrusted = self._trust_for(tsa)
            result = request_token(tsa, imprint, roots=roots, untrusted=untrusted,
                                   session=self._session(tsa.name))
        except Exception as exc:
            observe_tsa(tsa.name, time.perf_counter() - started, exc)
            raise
        observe_tsa(tsa.name, time.perf_counter() - started, None)
        certs = result.verdict.facts.chain
        chain = "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)
        # Fetched after the token is verified and before it is stored, so the data is stored
        # with it; collect never raises for a fetch (a failure is stored as 'none').
        revocation = self._revocation.collect(certs, tsa.name) if self._revocation else ()
        return NewToken(tsa.name, result.reply, result.gen_time, result.serial, chain or None,
                        revocation)

    def _trust_for(self, tsa: TSAConfig) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
        with self._lock:
            if tsa.name not in self._trust:
                try:
                    self._trust[tsa.name] = load_trust(tsa)
                except ConfigError as exc:
                    raise TrustUnavailableError(tsa.name, str(exc)) from exc
            return self._trust[tsa.name]

    def _session(self, name: str) -> requests.Session:
        sessions: dict[str, requests.Session] = getattr(self._local, "sessions", None) or {}
        self._local.sessions = sessions
        if name not in sessions:
            sessions[name] = requests.Session()
        return sessions[name]
