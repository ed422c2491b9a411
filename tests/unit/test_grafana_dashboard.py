"""config/grafana/chronoseal.json: valid JSON with a panel for every metric family."""

from __future__ import annotations

import json
from pathlib import Path

from service.usecases import backlog, metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana" / "chronoseal.json"


def test_the_dashboard_charts_every_family() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    recorded = [m._name for m in vars(metrics).values()  # noqa: SLF001 - the family's name
                if isinstance(m, metrics.Counter | metrics.Histogram)]
    scraped = [backlog.RECEIPTS, backlog.OLDEST_PENDING, backlog.HASHING_BACKLOG]
    assert len(recorded) == 8
    assert [name for name in recorded + scraped if name not in exprs] == []
