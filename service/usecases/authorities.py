"""Who each configured TSA is, for the exhibit: its description and whether this service's
operator runs it or it is independent. Operator-run: the built-in TSA, known by its root (the
one it made in the data dir) or its address (CHRONOSEAL_TSA_HOST:PORT); a TSA named "builtin"
is shown as the operator's whatever the configuration says (service.evidence.certificate)."""

from __future__ import annotations

import logging
import os
import threading
import time

from service.errors import ConfigError
from service.evidence.facts import Authority
from service.settings import Settings
from service.timestamping.tsa_config import (
    BUILTIN_ROOT_FILE,
    builtin_tsa_url,
    load_tsa_configs_for,
)

log = logging.getLogger(__name__)

# The TSA files are read again at most this often per process: every bundle names its
# authorities, and parsing the TOML and the roots for each took a third of the API's time in
# `chronoseal stamp`'s bundle fetches. An edited file shows in the exhibit within this time.
AUTHORITIES_TTL_S = 30.0
# One slot: a process has one Settings object (tests make many, each read afresh).
_cached: tuple[Settings, float, dict[str, Authority]] | None = None
_cache_lock = threading.Lock()


def authorities(settings: Settings) -> dict[str, Authority]:
    """Every configured TSA (enabled or not: old tokens name TSAs since disabled) by name;
    read at most every AUTHORITIES_TTL_S for the same Settings object."""
    global _cached
    now = time.monotonic()
    with _cache_lock:
        cached = _cached
    if cached is not None and cached[0] is settings and now < cached[1]:
        return dict(cached[2])
    found = _read(settings)
    with _cache_lock:
        _cached = (settings, now + AUTHORITIES_TTL_S, found)
    return dict(found)


def _read(settings: Settings) -> dict[str, Authority]:
    try:
        configs = load_tsa_configs_for(settings, os.environ)
    except ConfigError as exc:  # the exhibit still renders; the TSA names stand alone
        log.warning("TSA definitions unreadable for the exhibit: %s", exc)
        return {}
    builtin_root = settings.data_path / BUILTIN_ROOT_FILE
    builtin_url = builtin_tsa_url(settings.tsa_host, settings.tsa_port)
    return {t.name: Authority(t.description, builtin_root in t.roots or t.url == builtin_url)
            for t in configs}
