"""The directory where one machine's Chronoseal processes share their metrics (Prometheus
multiprocess mode), prepared before prometheus_client is imported.

prometheus_client decides at import whether values live in memory or in per-process files
under PROMETHEUS_MULTIPROC_DIR, so the `chronoseal` command calls `share_metrics` before it
imports any command module (a process that imported it already, a test calling `main`,
keeps its mode). `up` and a `serve` started on its own own the directory: they
empty it (counters of an earlier run must not be added to this one's) and pass it on to their
children in the environment; a `worker` (or a `serve` started by `up`) joins the one given.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path

from service.errors import ConfigError
from service.settings import load_settings

ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNERS = frozenset({"up", "serve"})  # start the processes that share the directory
MEMBERS = frozenset({"worker"})  # record into the directory an owner prepared
# prometheus_client's files (counter_<pid>.db, gauge_livesum_<pid>.db, ...): only these are
# deleted, so a directory set by mistake to DATA_DIR keeps chronoseal.db.
METRIC_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def share_metrics(command: str | None, env: MutableMapping[str, str] = os.environ
                  ) -> Path | None:
    """Set PROMETHEUS_MULTIPROC_DIR for `command`, emptied first when it owns it; the directory.

    `up` owns the directory (PROMETHEUS_MULTIPROC_DIR if set, else settings.metrics_dir); a
    `serve` given the variable (by `up`, or by an operator who manages the directory) joins
    it, otherwise it owns settings.metrics_dir; a `worker` always joins.
    """
    if command not in OWNERS | MEMBERS:
        return None
    given = env.get(ENV)
    if given:
        path = Path(given)
    else:
        try:
            path = load_settings(env).metrics_path
        except ConfigError:
            return None  # the command reports the bad setting itself
    path.mkdir(parents=True, exist_ok=True)
    if command == "up" or (command in OWNERS and not given):
        empty(path)
    env[ENV] = str(path)
    return path


def empty(path: Path) -> None:
    """Delete the metric files in `path` (and nothing else)."""
    for entry in path.iterdir():
        if METRIC_FILE.fullmatch(entry.name):
            entry.unlink(missing_ok=True)
