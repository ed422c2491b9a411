"""Stamp batches: claim pending receipts, ask every TSA for a token over their Merkle root.

The batch machinery (claims, leases, retries, tokens stored and verified) is in
usecases.stamping; this module wires it to the settings and runs one stamp job's worth of it.
"""

from __future__ import annotations

import logging
import os

from cryptography.hazmat.primitives import hashes

from service.errors import ConfigError
from service.settings import Settings
from service.timestamping.tsa_config import (
    TSAConfig,
    enabled_tsas,
    load_trust,
    load_tsa_configs_for,
)
from service.usecases import queueing
from service.usecases.stamping import BatchOptions, RetryPolicy, Stamper, TokenRequester
from service.usecases.stamping.revocation import fetcher_for
from service.wiring import Services

log = logging.getLogger(__name__)


def load_enabled_tsas(settings: Settings) -> list[TSAConfig]:
    """The TSAs to ask, read as the API reads them (config files, then settings and env)."""
    return enabled_tsas(load_tsa_configs_for(settings, os.environ))


def root_fingerprints(settings: Settings) -> dict[str, list[str]]:
    """Each enabled TSA's name and the SHA-256 fingerprints (hex) of the roots its tokens must
    chain to, so an operator can check them against the CA's published ones; a TSA whose root
    file cannot be read yet (the built-in TSA before its first start) has none."""
    fingerprints: dict[str, list[str]] = {}
    for tsa in load_enabled_tsas(settings):
        try:
            roots = load_trust(tsa)[0]
        except ConfigError:
            roots = []
        fingerprints[tsa.name] = [root.fingerprint(hashes.SHA256()).hex() for root in roots]
    return fingerprints


def build_stamper(services: Services, owner: str) -> Stamper:
    """A stamper for this process; `owner` labels its batch leases."""
    settings = services.settings
    tsas = load_enabled_tsas(settings)
    if len(tsas) < settings.min_tokens:
        log.error("min_tokens is %d but %d TSA(s) are enabled: receipts will stay pending "
                  "until they fail after give_up_after_s", settings.min_tokens, len(tsas))
    options = BatchOptions(settings.batch_max_size, settings.batch_max_wait_ms,
                           settings.min_tokens)
    fetcher = fetcher_for(settings, tsas)
    return Stamper(services.engine, tsas, TokenRequester(tsas, fetcher), options=options,
                   policy=RetryPolicy.from_settings(settings), owner=owner)


def stamp_next(services: Services, stamper: Stamper) -> str | None:
    """Stamp the next batch of pending receipts, and take over one abandoned batch if any.

    Clears the enqueue flag before claiming (see usecases.queueing): any receipt committed
    before this point is claimable now or later by this job, any later one enqueued its own.
    Returns the id of the new batch (for logs).
    """
    queueing.clear_stamp_flag(services)
    batch = stamper.claim_next()
    if batch is not None:
        if len(batch.leaves) >= stamper.options.max_size:
            # More may be waiting: let another worker claim them while we wait on TSAs.
            queueing.enqueue_stamping(services)
        stamper.stamp(batch)
    abandoned = stamper.claim_expired()
    if abandoned is not None:
        queueing.enqueue_stamp_job(services)  # there may be more; keep them moving in parallel
        log.info("taking over batch %s (lease expired)", abandoned.id)
        stamper.stamp(abandoned)
    return batch.id if batch is not None else None
